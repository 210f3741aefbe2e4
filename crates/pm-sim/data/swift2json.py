# Converts the `static let x: [String: Any] = [...]` literals of upstream ToolDefinitions.swift to JSON.
import json, re, sys
src = open(sys.argv[1], encoding="utf-8").read()
def tokens(s):
    i = 0
    while i < len(s):
        c = s[i]
        if c.isspace(): i += 1; continue
        if s.startswith("//", i): i = s.index("\n", i); continue
        if s.startswith('"""', i):
            j = s.index('"""', i + 3); import textwrap
            yield ("str", textwrap.dedent(s[i+3:j]).strip("\n").rstrip()); i = j + 3; continue
        if c == '"':
            j = i + 1; out = ""
            while s[j] != '"':
                if s[j] == "\\":
                    n = s[j+1]; out += {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(n, n); j += 2
                else: out += s[j]; j += 1
            yield ("str", out); i = j + 1; continue
        if c in "[]:,": yield (c, c); i += 1; continue
        m = re.match(r"[A-Za-z_][A-Za-z0-9_.]*|-?\d+(\.\d+)?", s[i:])
        if m: yield ("id", m.group(0)); i += len(m.group(0)); continue
        raise SystemExit(f"unexpected {s[i:i+30]!r}")
def parse(toks, k):
    t, v = toks[k]
    if t == "str": return v, k + 1
    if t == "id":
        if v in ("true", "false"): return v == "true", k + 1
        if re.match(r"-?\d", v): return (float(v) if "." in v else int(v)), k + 1
        raise SystemExit(f"identifier {v}")
    assert t == "["
    k += 1
    if toks[k][0] == ":" and toks[k+1][0] == "]": return {}, k + 2
    if toks[k][0] == "]": return [], k + 1
    first, k2 = parse(toks, k)
    k2 = skip_cast(toks, k2)
    if toks[k2][0] == ":":
        d = {}; key = first; k = k2 + 1
        while True:
            val, k = parse(toks, k); k = skip_cast(toks, k); d[key] = val
            if toks[k][0] == ",": k += 1
            if toks[k][0] == "]": return d, k + 1
            key, k = parse(toks, k)
            k = skip_cast(toks, k)
            if toks[k][0] != ":": raise SystemExit(f"at {toks[k-3:k+3]}")
            k += 1
    arr = [first]; k = k2
    while True:
        if toks[k][0] == ",": k += 1
        if toks[k][0] == "]": return arr, k + 1
        v, k = parse(toks, k); k = skip_cast(toks, k); arr.append(v)
def skip_cast(toks, k):
    if toks[k] == ("id", "as"):
        k += 1; depth = 0
        while True:
            t = toks[k][0]; k += 1
            if t == "[": depth += 1
            elif t == "]":
                depth -= 1
                if depth == 0: return k
    return k
tools = {}
for m in re.finditer(r"static let (\w+): \[String: Any\] = ", src):
    start = m.end(); toks = []
    # tokenize from the literal start until its closing bracket
    depth = 0
    for tok in tokens(src[start:]):
        toks.append(tok)
        if tok[0] == "[": depth += 1
        elif tok[0] == "]":
            depth -= 1
            if depth == 0: break
    toks.append(("end", ""))
    v, _ = parse(toks, 0)
    tools[v["name"]] = v
json.dump(tools, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False, indent=1, sort_keys=True)
print(len(tools), "tools")
