"""Greedy tokens of two `bench --json` runs of the same model and prompts (docs/quantization.md): per batch
size, how many requests' tokens are equal at every step, how many steps are equal in all, and where each
other request first parts. Usage: compare_greedy.py REFERENCE.json CANDIDATE.json"""
import json, sys

reference, candidate = (json.load(open(path)) for path in sys.argv[1:3])
rows = []
for a, b in zip(reference["rows"], candidate["rows"]):
    assert a["batch"] == b["batch"], "the two runs must have the same batch sizes"
    parted = []
    equal_steps = total_steps = 0
    for index, (x, y) in enumerate(zip(a["token_ids"], b["token_ids"])):
        first = next((step for step, (p, q) in enumerate(zip(x, y)) if p != q), None)
        equal_steps += len(x) if first is None else first
        total_steps += len(x)
        if first is not None:
            parted.append({"request": index, "first_different_step": first})
    rows.append({"batch": a["batch"], "requests": len(a["token_ids"]), "requests_equal_throughout": len(a["token_ids"]) - len(parted),
                 "steps_equal_before_parting": equal_steps, "steps": total_steps, "parted": parted})
print(json.dumps(rows, indent=1))
