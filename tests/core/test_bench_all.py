"""``spotter bench all``: one run writes the JSON, the page, the plots and the README table.

The quick run's figures mean nothing (a few seconds of each benchmark on a busy machine) and
no time is judged: only that every section ran and every figure stands beside its target and
floor. The full run is for docs/performance.md, by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.bench.all import README_BEGIN, README_END, SECTIONS, figures, spotter_command

PNG = b"\x89PNG\r\n\x1a\n"


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.radio
@pytest.mark.broker
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_quick_run_writes_json_page_plots_and_readme_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{README_BEGIN}\nold figures\n{README_END}\n\nafter\n")
    out = tmp_path / "docs"
    done = subprocess.run(
        [*spotter_command(), "bench", "all", "--quick", "--out", str(out), "--readme", str(readme)],
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = _strict_json(done.stdout)
    assert printed == _strict_json((out / "performance.json").read_text())
    assert printed["quick"] is True
    assert printed["ok"] is True
    for name in SECTIONS:
        assert "error" not in printed["sections"][name], printed["sections"][name]
    assert [p["tilt_rate_hz"] for p in printed["sections"]["station"]["points"]] == [100]
    assert [r["clients"] for r in printed["sections"]["dashboard"]["runs"]] == [1]
    replay = printed["sections"]["replay"]["points"]
    assert [p["session_s"] for p in replay] == [20.0, 40.0]
    assert all(p["notifications"] > 0 for p in replay)
    for name in ("replay", "station", "startup_imports", "station_rss", "dashboard"):
        made = printed["profiles"][name]
        assert "error" not in made, (name, made)
        assert made.get("top") or made.get("breakdown"), (name, made)

    rows = printed["figures"]
    assert (
        len(rows) == 12
    )  # every headline figure of issues 11 and 10 (start-up), each with its target and floor
    for row in rows:
        assert isinstance(row["measured"], int | float), row
        assert row["target"], row
        assert row["floor"], row
        assert isinstance(row["met"], bool), row

    page = (out / "performance.md").read_text()
    assert "--quick" in page
    for row in rows:
        assert row["figure"] in page
    _every_missed_figure_has_its_profile_under_it(printed, page)
    for name in ("replay", "station", "dashboard", "hub"):
        plot = out / "performance" / f"{name}.png"
        assert plot.read_bytes().startswith(PNG)
        assert f"(performance/{name}.png)" in page

    text = readme.read_text()
    assert "old figures" not in text
    assert text.startswith("# x\n\n" + README_BEGIN)
    assert text.endswith(README_END + "\n\nafter\n")
    assert rows[0]["figure"] in text


def _every_missed_figure_has_its_profile_under_it(report: dict[str, Any], page: str) -> None:
    where = page.index("## Where the time goes")
    for row in report["figures"]:
        if row["met"] is not False:
            continue
        heading = page.index(f"### {row['figure']}: ", where)
        following = page.find("\n### ", heading + 1)
        under = page[heading : None if following < 0 else following]
        names = [n for n in row["profiles"] if n in report["profiles"]]
        assert names, row  # a profile was made in the run for every missed figure
        for name in names:
            made = report["profiles"][name]
            assert made["what"] in page[where:]
            assert made["what"] in under or f"The `{name}` profile: above" in under, name


def _report(**sections: dict[str, Any]) -> dict[str, Any]:
    failed = {"error": "RuntimeError: not run"}
    all_sections = {name: sections.get(name, failed) for name in SECTIONS}
    return {"plan": {"headline_replay_s": 600.0}, "sections": all_sections}


def test_a_figure_over_its_target_is_not_met_and_the_floor_stands_beside_it() -> None:
    station = {
        "points": [
            {
                "tilt_rate_hz": 100,
                "cpu_percent": 3.0,
                "floor_cpu_percent": 2.5,
                "peak_rss_mb": 59.0,
                "floor_peak_rss_mb": 58.0,
            }
        ],
        "bare_interpreter_bleak_radio_rss_mb": 50.0,
    }
    rows = {r["figure"]: r for r in figures(_report(station=station))}
    cpu = rows["station CPU, 100 Hz tilt + 1 Hz HR (% of one core)"]
    assert (cpu["measured"], cpu["met"]) == (3.0, False)
    assert "receive-only station 2.5 %" in cpu["floor"]
    ratio = rows["station CPU / receive-only CPU, 100 Hz tilt + 1 Hz HR"]
    assert (ratio["measured"], ratio["met"]) == (1.2, True)
    assert rows["station peak RSS"]["met"] is True
    assert len(rows) == 3  # the sections that failed give no figure


def test_a_missed_figure_is_rendered_with_its_profile_and_a_met_one_is_not() -> None:
    from monitor.bench.all import render

    station = {
        "points": [
            {
                "tilt_rate_hz": 100,
                "cpu_percent": 2.0,
                "floor_cpu_percent": 1.9,
                "peak_rss_mb": 70.0,
                "floor_peak_rss_mb": 69.0,
                "notifications_per_s": 101.0,
                "latency_p99_ms": 1.0,
            }
        ],
        "bare_interpreter_bleak_radio_rss_mb": 43.0,
        "note": "n",
        "seconds_each": 3.0,
    }
    report = _report(station=station)
    report |= {
        "commit": "abc",
        "started_at": "2026-01-01T00:00:00+00:00",
        "quick": False,
        "note": "",
        "machine": {
            "cpu": "x",
            "cpus": 2,
            "system": "Linux",
            "python": "3.11",
            "load_average_at_start": [0, 0, 0],
        },
        "profiles": {
            "station": {
                "tool": "cProfile",
                "what": "the station's CPU",
                "top": [{"function": "f", "calls": 1, "own_s": 0.1, "cum_s": 0.2}],
            },
            "station_rss": {
                "tool": "VmRSS",
                "what": "the station's memory",
                "breakdown": [{"part": "+ bleak", "value": 10.7, "unit": "MB", "total": 21.5}],
            },
        },
    }
    report["figures"] = figures(report)
    page = render(report)
    where = page[page.index("## Where the time goes") :]
    rss = where.index("### station peak RSS: 70 MB (target <= 60)")
    assert where.index("the station's memory (VmRSS)") > rss
    assert "| + bleak | 10.7 MB | 21.5 MB |" in where
    assert "### station CPU" not in where  # met: its profile is among the others
    assert where.index("the station's CPU (cProfile)") > where.index("### Other profiles")
    _every_missed_figure_has_its_profile_under_it(report, page)


def test_a_readme_without_the_markers_is_refused(tmp_path: Path) -> None:
    from monitor.bench.all import update_readme

    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    with pytest.raises(ValueError, match="no '<!-- bench-all:begin"):
        update_readme(readme, {})
    assert readme.read_text() == "# no table here\n"


def test_the_floor_runs_without_spotter(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(
        '{"spotter_trace": 1}\n{"t": 0.0, "sensor": "tilt", "char": "c", "hex": "030000000093e8"}\n'
        '{"t": 0.1, "sensor": "hr", "char": "h", "hex": "0046"}\n{"t": 0.2, "end": true}\n'
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor.bench.floor", str(trace)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "2\n"
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "monitor" in imported  # the packages, for -m
    spotter = {m for m in imported if m.startswith(("monitor.", "firmware_sim", "dashboard"))}
    assert spotter == {"monitor.bench"}  # the floor itself runs as __main__
