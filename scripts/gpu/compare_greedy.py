"""Greedy tokens of two `bench --json` runs of the same model and prompts (docs/quantization.md): per batch
size, how many requests' tokens are equal at every step, how many steps are equal in all, and where each
other request first parts. Runs made with `bench --record-margins` also give, at each parting, the logit
margin of the reference's token over its runner-up and the candidate's (how near a tie the step was),
beside the median margin of all the reference's steps. Usage: compare_greedy.py REFERENCE.json CANDIDATE.json"""
import json, statistics, sys

reference, candidate = (json.load(open(path)) for path in sys.argv[1:3])
rows = []
for a, b in zip(reference["rows"], candidate["rows"]):
    assert a["batch"] == b["batch"], "the two runs must have the same batch sizes"
    margins_a, margins_b = a.get("token_margins"), b.get("token_margins")
    parted = []
    equal_steps = total_steps = 0
    for index, (x, y) in enumerate(zip(a["token_ids"], b["token_ids"])):
        first = next((step for step, (p, q) in enumerate(zip(x, y)) if p != q), None)
        equal_steps += len(x) if first is None else first
        total_steps += len(x)
        if first is not None:
            entry = {"request": index, "first_different_step": first}
            if margins_a and margins_b:
                entry["reference_margin"] = round(margins_a[index][first], 5)
                entry["candidate_margin"] = round(margins_b[index][first], 5)
            parted.append(entry)
    row = {"batch": a["batch"], "requests": len(a["token_ids"]), "requests_equal_throughout": len(a["token_ids"]) - len(parted),
           "steps_equal_before_parting": equal_steps, "steps": total_steps}
    if margins_a:
        every = [m for request in margins_a for m in request]
        row["reference_margin_median"] = round(statistics.median(every), 5)
        if parted and margins_b:
            row["parting_margin_median"] = round(statistics.median(p["reference_margin"] for p in parted), 5)
            # how many of all the reference's steps were as near a tie as the widest parting
            widest = max(p["reference_margin"] for p in parted)
            row["steps_at_or_below_widest_parting_margin"] = sum(m <= widest for m in every)
    row["parted"] = parted
    rows.append(row)
print(json.dumps(rows, indent=1))
