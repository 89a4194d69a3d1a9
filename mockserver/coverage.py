"""API coverage: which documented operations, and which of their documented answers, requests
exercised. Built from the journal's answer counts (`journal.Journal.counted`), so it costs a
request nothing beyond its journal entry and stays right when the journal ring drops entries.

A report (`report`) is plain JSON; `merge` adds two (a test run's tenants), `text` and `junit`
render one for people and for CI tools.
"""

from collections import Counter
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree

from mockserver.journal import Answered

if TYPE_CHECKING:  # reports are merged and rendered (testing, the pytest plugin) without the server's imports
    from mockserver.vendor import Operation, Vendor


def documented_as(operation: "Operation", status: int) -> str | None:
    """The key of the operation's responses that documents `status` (exact, range, `default`)."""
    keys = {str(key) for key in operation.responses}
    for key in (str(status), f"{status // 100}XX", "default"):
        if key in keys:
            return key
    return None


def report(vendors: "list[Vendor]", counts: Counter[Answered], tenant: str | None = None) -> dict[str, Any]:
    """Every documented operation of each vendor with its calls and answers by documented status;
    statuses answered that the spec does not document; requests that matched no operation."""
    return {"tenant": tenant, "vendors": {vendor.name: _vendor_report(vendor, counts) for vendor in vendors}}


def _vendor_report(vendor: "Vendor", counts: Counter[Answered]) -> dict[str, Any]:
    operations: dict[str, dict[str, Any]] = {
        op_id: {"operation": op_id, "method": op.method, "path": op.path, "calls": 0,
                "statuses": {str(key): 0 for key in op.responses}, "undocumented": {}}
        for op_id, op in vendor.operations.items()}
    unmatched: dict[str, Any] = {"calls": 0, "statuses": {}}
    for (name, op_id, status), n in sorted(counts.items(), key=lambda item: (item[0][0], item[0][2])):
        operation = vendor.operations.get(op_id) if name == vendor.name and op_id is not None else None
        if operation is None:  # another vendor's, no operation, or one this server's spec no longer has
            if name == vendor.name:
                unmatched["calls"] += n
                _add(unmatched["statuses"], str(status), n)
            continue
        found = operations[operation.id]
        found["calls"] += n
        key = documented_as(operation, status)
        _add(found["statuses"] if key is not None else found["undocumented"], key or str(status), n)
    listed = list(operations.values())
    return {"base_path": vendor.base_path, "summary": _summary(listed, unmatched), "operations": listed,
            "unmatched": unmatched}


def _summary(operations: list[dict[str, Any]], unmatched: dict[str, Any]) -> dict[str, int]:
    return {
        "operations": len(operations),
        "operations_exercised": sum(1 for op in operations if op["calls"]),
        "statuses": sum(len(op["statuses"]) for op in operations),
        "statuses_seen": sum(1 for op in operations for n in op["statuses"].values() if n),
        "calls": sum(op["calls"] for op in operations) + unmatched["calls"],
    }


def _add(counted: dict[str, int], key: str, n: int) -> None:
    counted[key] = counted.get(key, 0) + n


def merge(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two reports of one server's vendors added up (e.g. every tenant of a test run)."""
    vendors = {}
    for name, mine in first["vendors"].items():
        theirs = second["vendors"].get(name)
        if theirs is None:
            vendors[name] = mine
            continue
        by_id = {op["operation"]: op for op in theirs["operations"]}
        operations = []
        for op in mine["operations"]:
            other = by_id.get(op["operation"], {"calls": 0, "statuses": {}, "undocumented": {}})
            operations.append(op | {"calls": op["calls"] + other["calls"],
                                    "statuses": _sum(op["statuses"], other["statuses"]),
                                    "undocumented": _sum(op["undocumented"], other["undocumented"])})
        unmatched = {"calls": mine["unmatched"]["calls"] + theirs["unmatched"]["calls"],
                     "statuses": _sum(mine["unmatched"]["statuses"], theirs["unmatched"]["statuses"])}
        vendors[name] = mine | {"summary": _summary(operations, unmatched), "operations": operations,
                                "unmatched": unmatched}
    for name, theirs in second["vendors"].items():
        vendors.setdefault(name, theirs)
    return {"tenant": first["tenant"] if first["tenant"] == second["tenant"] else None, "vendors": vendors}


def _sum(first: dict[str, int], second: dict[str, int]) -> dict[str, int]:
    added = dict(first)
    for key, n in second.items():
        _add(added, key, n)
    return added


def exercised_percent(report: dict[str, Any]) -> float:
    """Documented operations exercised, in percent, over the vendors that were called at all
    (a run that tests one vendor is not measured against the others)."""
    called = [vendor["summary"] for vendor in report["vendors"].values() if vendor["summary"]["calls"]]
    documented = sum(summary["operations"] for summary in called)
    return 100 * sum(summary["operations_exercised"] for summary in called) / documented if documented else 0.0


def text(report: dict[str, Any], detail: bool = False) -> str:
    """A table a vendor a line; with `detail`, what was never exercised and what was undocumented."""
    lines = [f"{'vendor':<10} {'operations exercised':>22} {'statuses seen':>20} {'calls':>8}"]
    for name, vendor in report["vendors"].items():
        summary = vendor["summary"]
        lines.append(f"{name:<10} {_ratio(summary['operations_exercised'], summary['operations']):>22} "
                     f"{_ratio(summary['statuses_seen'], summary['statuses']):>20} {summary['calls']:>8}")
    if detail:
        for name, vendor in report["vendors"].items():
            never = [f"{op['operation']} ({op['method']} {op['path']})" for op in vendor["operations"] if not op["calls"]]
            unseen = [f"{op['operation']} {key}" for op in vendor["operations"] if op["calls"]
                      for key, n in op["statuses"].items() if not n]
            undocumented = [f"{op['operation']} {key} (x{n})" for op in vendor["operations"]
                            for key, n in op["undocumented"].items()]
            lines += [f"{name}: never exercised ({len(never)}): {'; '.join(never) or '-'}",
                      f"{name}: documented statuses never answered ({len(unseen)}): {'; '.join(unseen) or '-'}"]
            if undocumented:
                lines.append(f"{name}: statuses the spec does not document: {'; '.join(undocumented)}")
            if vendor["unmatched"]["calls"]:
                lines.append(f"{name}: requests that matched no operation: {vendor['unmatched']['calls']}")
    return "\n".join(lines)


def _ratio(part: int, whole: int) -> str:
    return f"{part} of {whole} {100 * part / whole if whole else 0:5.1f}%"


def junit(report: dict[str, Any]) -> str:
    """JUnit XML, which CI servers show: a test case per documented status of each operation,
    skipped when never answered; an undocumented status answered is a failure."""
    suites = ElementTree.Element("testsuites", name="mockserver API coverage")
    for name, vendor in report["vendors"].items():
        suite = ElementTree.SubElement(suites, "testsuite", name=name)
        cases = skipped = failures = 0
        for op in vendor["operations"]:
            for key, n in [*op["statuses"].items(), *op["undocumented"].items()]:
                case = ElementTree.SubElement(suite, "testcase", classname=f"{name}.{op['operation']}",
                                              name=f"{op['method']} {op['path']} {key}")
                cases += 1
                if key in op["undocumented"]:
                    failures += 1
                    ElementTree.SubElement(case, "failure", message=f"answered {n} times; the spec does not document it")
                elif not n:
                    skipped += 1
                    ElementTree.SubElement(case, "skipped", message="never answered")
                else:
                    ElementTree.SubElement(case, "system-out").text = f"answered {n} times"
        suite.set("tests", str(cases))
        suite.set("skipped", str(skipped))
        suite.set("failures", str(failures))
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True)
