"""Render a Report: a rich table for people, JSON and JUnit XML for CI."""

from __future__ import annotations

import json
from typing import IO
from xml.etree import ElementTree as ET

from paddlehot_cli.abi.findings import FAIL, SKIP, WARNING
from paddlehot_cli.abi.runner import Report
from paddlehot_cli.core.variants import variant_key

FORMATS = ("text", "json", "junit")


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def render_junit(report: Report) -> str:
    fails = sum(
        1
        for f in report.findings
        if f.status == FAIL and (f.severity != WARNING or report.policy.warnings_fail)
    )
    skips = sum(1 for f in report.findings if f.status == SKIP)
    attrs = {
        "tests": str(len(report.findings)),
        "failures": str(fails),
        "errors": "0",
        "skipped": str(skips),
    }
    suites = ET.Element("testsuites", {"name": "paddlehot abi-check", **attrs})
    suite = ET.SubElement(suites, "testsuite", {"name": f"abi-check {report.target}", **attrs})
    for f in report.findings:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"paddlehot.abi_check.{f.id}", "name": f"{f.id} {f.title}", "time": "0"},
        )
        body = "\n".join(f.details + ([f"hint: {f.hint}"] if f.hint else []))
        if f.status == FAIL and (f.severity != WARNING or report.policy.warnings_fail):
            el = ET.SubElement(case, "failure", {"type": f.severity, "message": f.message})
            el.text = body
        elif f.status == FAIL:
            ET.SubElement(case, "system-err").text = f"warning: {f.message}\n{body}".rstrip()
        elif f.status == SKIP:
            ET.SubElement(case, "skipped", {"message": f.message})
        else:
            ET.SubElement(case, "system-out").text = f.message
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


def render_text(report: Report, file: IO[str] | None = None, color: bool | None = None) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(
        file=file, no_color=color is False, highlight=False, width=None if file is None else 120
    )
    m = report.subject.manifest
    what = f"{m.name} {variant_key(m.version, m.precision)}" if m else "unknown model"
    console.print(
        f"[bold]abi-check[/bold] {escape(report.target)}: {escape(what)} "
        f"({report.kind}, {report.arch}, policy {report.policy.name}, "
        f"glibc floor {report.glibc_floor or '-'})"
    )
    if report.baseline:
        b = report.baseline
        console.print(
            f"baseline {escape(str(b['spec']))}: {b['name']} {b['version']}, "
            f"{b['bump']} bump; C ABI {b['c_abi']}, signature {b['signature']}"
        )
    if report.signed:
        console.print("signed: " + "; ".join(f"{k} {escape(v)}" for k, v in report.signed.items()))
    table = Table(box=box.SIMPLE, show_lines=False, expand=False, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("message", overflow="fold")
    marks = {"pass": "[green]pass[/green]", "skip": "[dim]skip[/dim]"}
    for f in report.findings:
        if f.status == FAIL:
            mark = "[yellow]warn[/yellow]" if f.severity == WARNING else "[red]FAIL[/red]"
            msg = escape(f.message) + (f"\n[dim]fix: {escape(f.hint)}[/dim]" if f.hint else "")
        else:
            mark, msg = marks[f.status], escape(f.message)
        table.add_row(f.id, mark, msg)
    console.print(table)
    s = report.to_json()["summary"]
    verdict = "[green]ok[/green]" if report.exit_code == 0 else "[red]violations[/red]"
    console.print(
        f"{verdict}: {s['passed']} passed, {s['failed']} failed, {s['warnings']} "
        f"warnings, {s['skipped']} skipped"
    )
