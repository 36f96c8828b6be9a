#!/usr/bin/env python3
"""Persistent RelayMesh script agent: started once, serves many steps.

Reads one request per line on stdin, {"type": "run", "id", "input", "deps", ...}, and
answers one line per request on stdout: {"type": "result", "id", "output"} with the input's
strings upper-cased (object keys are kept), or {"type": "error", "id", "message", "retryable"}.
Requests are answered at once, so {"type": "cancel"} lines need no action here.
"""
import json
import sys


def upper(value):
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, list):
        return [upper(item) for item in value]
    if isinstance(value, dict):
        return {key: upper(item) for key, item in value.items()}
    return value


def main():
    out = sys.stdout
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if request.get("type") != "run":
            continue
        try:
            answer = {"type": "result", "id": request["id"], "output": {"upper": upper(request["input"]), "deps": upper(request["deps"])}}
        except Exception as error:  # report, keep serving
            answer = {"type": "error", "id": request.get("id"), "message": f"{type(error).__name__}: {error}", "retryable": False}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
