import schemathesis
from hypothesis import given, settings, HealthCheck
from schemathesis import GenerationMode
from tzsb.web import create_asgi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance, content_type_conformance, response_schema_conformance

def test_st(node):
    app = create_asgi(node)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    print(type(schema), list(schema))
    op = schema["/tzsb/exchange"]["POST"]
    seen = []
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(GenerationMode.NEGATIVE) )
    def inner(case):
        r = case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance])
        seen.append((case.media_type, r.status_code, r.text[:150]))
    inner()
    for s in seen[:30]: print(s)
