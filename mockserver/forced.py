"""Forced responses, Prism's convention: `Prefer: code=429` answers with the operation's documented
429 (its documented example, or the vendor's error for that status in its own dialect),
`Prefer: example=NAME` with a documented example, both together with that status's named
example. Nothing is stored and no limit is counted."""

from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

from mockserver.errors import ApiError
from mockserver.vendor import Operation


def preferences(header: str) -> dict[str, str]:
    """`code=429, example=self` (commas or semicolons) as a dict."""
    pairs = (item.strip().partition("=") for item in header.replace(";", ",").split(","))
    return {key.strip().lower(): value.strip().strip('"') for key, sign, value in pairs if sign}


def _examples(response: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = next(iter(response.get("content", {}).values()), {})
    named = {name: example.get("value") for name, example in content.get("examples", {}).items()}
    return named | ({"default": content["example"]} if "example" in content else {})


def forced_response(operation: Operation, header: str) -> JSONResponse | None:
    """The forced answer, None when the request asks for none (or for a success with no example,
    which the handler then produces), or ApiError for what the spec does not document."""
    wanted = preferences(header)
    code, example = wanted.get("code"), wanted.get("example")
    if code is None and example is None:
        return None
    if code is not None:
        if code not in operation.responses:
            raise ApiError(400, f"Prefer: code={code} is not a documented response of {operation.id}")
        candidates = {code: operation.responses[code]}
    else:
        candidates = {status: response for status, response in operation.responses.items()
                      if example in _examples(response)}
        if not candidates:
            raise ApiError(400, f"Prefer: example={example} is not documented for {operation.id}")
    status, response = next(iter(candidates.items()))
    examples = _examples(response)
    retry_after = response.get("headers", {}).get("Retry-After")
    headers = {"Retry-After": str(retry_after.get("example", 60))} if retry_after is not None else {}
    if example is not None:
        if example not in examples:
            raise ApiError(400, f"Prefer: example={example} is not documented for {status} of {operation.id}")
        return JSONResponse(examples[example], status_code=int(status), headers=headers)
    if examples:  # the vendor's own documented answer (for an error: its documented error body)
        return JSONResponse(next(iter(examples.values())), status_code=int(status), headers=headers)
    if int(status) >= 400:  # none documented: the vendor's error for that status, as its dialect words it
        raise ApiError(int(status), HTTPStatus(int(status)).phrase, headers=headers)
    return None
