#!/usr/bin/env python3
"""One-shot RelayMesh script agent: counts words in a list of documents.

Reads one JSON request on stdin ({"taskId", "stepId", "attempt", "input", "deps",
"traceparent", "kv"}) and writes its output as one JSON document on stdout.
Input: {"documents": ["text", ...], "crashAfter": N (optional)}.

After each document it writes a checkpoint on the control channel (fd 3), so a retried
attempt resumes from the last finished document instead of starting over. With
"crashAfter": N the first attempt fails after N documents, to show the resume.
"""
import json
import os
import re
import sys
from collections import Counter


def control_channel():
    fd = os.environ.get("RELAYMESH_CONTROL_FD")
    if not fd:
        return None
    try:
        return os.fdopen(int(fd), "w", buffering=1)
    except OSError:
        return None  # run by hand, without the engine: no control channel


def send(channel, message):
    if channel is not None:
        channel.write(json.dumps(message) + "\n")


def main():
    request = json.load(sys.stdin)
    documents = request["input"].get("documents", [])
    crash_after = request["input"].get("crashAfter")
    key = request["stepId"] + ".progress"
    channel = control_channel()

    saved = request.get("kv", {}).get(key) or {"done": 0, "counts": {}}
    done = saved["done"]
    counts = Counter(saved["counts"])
    resumed_from = done

    for index in range(done, len(documents)):
        counts.update(word.lower() for word in re.findall(r"[\w']+", documents[index]))
        done = index + 1
        send(channel, {"type": "checkpoint", "key": key, "value": {"done": done, "counts": dict(counts)}})
        send(channel, {"type": "progress", "pct": round(100 * done / len(documents)), "message": f"{done}/{len(documents)} documents"})
        if crash_after is not None and request["attempt"] == 1 and done == crash_after:
            print(f"word_count: simulated crash after {done} documents (attempt 1)", file=sys.stderr)
            sys.exit(75)

    json.dump({
        "documents": len(documents),
        "words": sum(counts.values()),
        "top": counts.most_common(5),
        "resumedFrom": resumed_from,
    }, sys.stdout)


if __name__ == "__main__":
    main()
