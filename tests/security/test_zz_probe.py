import orjson
from tests.support import grant, body, call, device, snapshot, log_rows
from tzsb.protocol.signing import sign, SignAlgorithm

def req(s, busilist_text, action="01", busicode="140101"):
    p = {"appid": "hz-city", "busicode": busicode, "action": action, "busilist": busilist_text, "random": "abcdefgh-1234"}
    p["sign"] = sign(p, s, SignAlgorithm.MD5)
    return orjson.dumps(p)

def test_probe(node, database_url):
    if "postgres" in database_url: return
    s = grant(node)
    d = device(1); 
    for text in ['[{"EQP_NAME":' + '['*600 + ']'*600 + '}]',
                 orjson.dumps([device(1, EQP_NAME="梯"*(10*1024*1024//3))]).decode(),
                 orjson.dumps([device(1, AREA_CODE=330106)]).decode(),
                 '[{"EQP_CODE":"%s","AREA_CODE":"330106","AREA_CODE":"110101"}]' % d["EQP_CODE"],
                 ]:
        a = call(node, req(s, text))
        print(len(text), str(a["datalist"])[:600])
    for cond in [{"_page_size": 10**30}, {"_page_size": "１０"}, {"_cursor": "abc.def"}, {"_since": 0}, {"EQP_CODE": {"$ne": ""}}, {"_updated_from": "2026-13-45' OR 1=1"}]:
        try: t = orjson.dumps([cond]).decode()
        except Exception: t = '[{"_page_size": 1000000000000000000000000000000}]'
        a = call(node, req(s, t, action="04"))
        print(t[:60], a["datalist"])
    raw = req(s, orjson.dumps([device(2)]).decode())
    dup = raw.replace(b'{"appid":"hz-city"', b'{"appid":"evil","appid":"hz-city"')
    print(dup[:60], call(node, dup)["datalist"])
