"""An LLM judge that reads answers the rules could not: extraction only, never a verdict.

``judge_run(folder, judge_spec)`` asks a judge model (any backend spec) about the records whose
primary scorer found no answer in a finished output (status ``no_answer``; censored answers are
never sent: there is no answer to read). The prompt is fixed and versioned (JUDGE_PROMPT_VERSION):
it asks for the option letter or the final answer the response gave, in one line ``ANSWER: ...``,
and never whether it is right. evalkit's own grader then grades that answer, as the extra score
``judged``. Each reply is stored in its record (``record.judge``), so a later rescore re-grades it
without any model; judge calls go through the response cache like model calls.

Audit: on a seeded random sample of records the rules did read, the judge is asked too, and its
agreement with the rules is reported (``judge.audit`` in the summary). ``max_items`` caps the
number of judge calls (misses first, then the audit sample), for hosted judges.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.backends import make_backend
from evalkit.backends.base import Backend
from evalkit.run.cache import ResponseCache, default_cache_path
from evalkit.run.engine import execute
from evalkit.run.plan import request_key
from evalkit.scoring.registry import extractor_entry
from evalkit.store import Record, RunFolder
from evalkit.types import Completion, GenParams, Message, Request, Sample

JUDGE_PROMPT_VERSION = 1
JUDGE_PARAMS = GenParams(max_tokens=64, temperature=0.0)
_LETTER_TASK = (
    "Below is a question with lettered options and a response to it. Which option letter did the "
    "response give as its final answer? Do not answer the question yourself and do not say whether "
    "the response is right. Reply with exactly one line: ANSWER: <letter>, or ANSWER: NONE if the "
    "response gives no final answer."
)
_VALUE_TASK = (
    "Below is a problem and a response to it. What final answer did the response give? Do not solve "
    "the problem yourself and do not say whether the response is right. Reply with exactly one line: "
    "ANSWER: <the final answer as written in the response>, or ANSWER: NONE if it gives none."
)
_REPLY_RE = re.compile(r"ANSWER\s*:\s*(.+)", re.IGNORECASE)
MAX_RESPONSE_CHARS = 6000  # the end of a long response holds its conclusion


def judge_messages(sample: Sample, response: str, letters: bool) -> tuple[Message, ...]:
    """The fixed extraction prompt (version JUDGE_PROMPT_VERSION)."""
    options = ""
    if letters and sample.choices:
        options = "\n" + "\n".join(
            f"({ch}) {text}" for ch, text in zip(sample.letters, sample.choices, strict=True)
        )
    tail = response[-MAX_RESPONSE_CHARS:]
    task = _LETTER_TASK if letters else _VALUE_TASK
    body = f"{task}\n\nQuestion:\n{sample.question}{options}\n\nResponse:\n{tail}"
    return (Message("user", body),)


def parse_reply(text: str, letters: tuple[str, ...] | None) -> str | None:
    """The answer in a judge's reply, or None (NONE, unreadable, or a letter outside the options)."""
    found = _REPLY_RE.findall(text or "")
    if not found:
        return None
    answer = found[-1].strip().strip("*`\"' ").rstrip(".").strip()
    if not answer or answer.upper() == "NONE":
        return None
    if letters is not None:
        m = re.fullmatch(r"\(?([A-Za-z])\)?", answer)
        letter = m.group(1).upper() if m else None
        return letter if letter in letters else None
    return answer


@dataclass
class JudgeResult:
    asked: int = 0  # records the judge was asked to read (misses)
    audited: int = 0  # records the rules read that the judge read too
    read: int = 0  # misses the judge found an answer in
    failed: int = 0  # judge requests that failed (excluded, never scored as wrong)
    skipped_cap: int = 0  # left out by max_items
    from_cache: int = 0
    identity: str = ""
    notes: list[str] = field(default_factory=list)


def _candidates(records: Sequence[Record], identity: str) -> tuple[list[Record], list[Record]]:
    """(misses not yet judged by this judge and prompt, answered records not yet audited)."""

    def judged(r: Record) -> bool:  # by this judge and prompt; a failed call is asked again
        j = r.judge or {}
        same = j.get("model") == identity and j.get("prompt_version") == JUDGE_PROMPT_VERSION
        return same and j.get("status") != "error"

    misses, read = [], []
    for r in records:
        if not r.ok or r.primary is None or r.sample is None or judged(r):
            continue
        status = r.primary.extraction.status
        if status == "no_answer":
            misses.append(r)
        elif status == "ok":
            read.append(r)
    return misses, read


def _request(rec: Record, identity: str, letters: bool) -> Request:
    assert rec.sample is not None
    messages = judge_messages(rec.sample, rec.completion.text, letters)
    key = request_key(identity, messages, None, JUDGE_PARAMS, 0)
    return Request(key, rec.task, rec.sample_id, rec.repeat, JUDGE_PARAMS, messages=messages)


def _reply(rec: Record, comp: Completion, identity: str, role: str, letters: bool) -> dict[str, Any]:
    assert rec.sample is not None
    reply: dict[str, Any] = {"model": identity, "prompt_version": JUDGE_PROMPT_VERSION, "role": role}
    if not comp.ok:
        return {**reply, "status": "error", "error": comp.error, "reply": None, "answer": None}
    answer = parse_reply(comp.text, rec.sample.letters if letters else None)
    return {
        **reply,
        "status": "ok" if answer is not None else "no_answer",
        "reply": comp.text,
        "answer": answer,
    }


async def _ask(backend: Backend, reqs: list[Request], cache: ResponseCache | None) -> dict[str, Completion]:
    hits = cache.get_many([r.key for r in reqs]) if cache else {}
    answers: dict[str, Completion] = dict(hits)
    todo = [r for r in reqs if r.key not in hits]

    async def on_done(req: Request, comp: Completion) -> None:
        if cache is not None:
            cache.put(req.key, backend.info.identity, comp)
        answers[req.key] = comp

    if todo:
        await backend.check()
        await execute(backend, todo, on_done, None)
    return answers


def judge_run(
    folder: RunFolder,
    scorers: dict[str, Any],
    judge_spec: str,
    judge_args: dict[str, str] | None = None,
    max_items: int | None = None,
    audit: int = 20,
    seed: int = 0,
    use_cache: bool = True,
) -> JudgeResult:
    """Ask the judge about the misses (and an audit sample) of ``folder``'s current records; the
    replies and judged grades are appended to the records (the last line of a record wins).
    ``scorers``: task name -> run.grading.TaskScorer (grades the judge's answers)."""
    backend = make_backend(judge_spec, judge_args or {})
    identity = backend.info.identity
    result = JudgeResult(identity=identity)
    records = [r for r in folder.current_records() if r.task in scorers]
    misses, read = _candidates(records, identity)
    audit_sample = random.Random(seed).sample(read, min(audit, len(read)))
    chosen = [(r, "rescue") for r in misses] + [(r, "audit") for r in audit_sample]
    if max_items is not None and len(chosen) > max_items:
        result.skipped_cap = len(chosen) - max_items
        chosen = chosen[:max_items]
    letters = {t: extractor_entry(s.spec.extract.name).answer_kind == "letter" for t, s in scorers.items()}
    reqs = [_request(r, identity, letters[r.task]) for r, _ in chosen]
    cache = ResponseCache(default_cache_path()) if use_cache and backend.cacheable else None
    try:
        answers = asyncio.run(_ask_and_close(backend, reqs, cache))
    finally:
        if cache is not None:
            cache.close()
    updated = []
    for (rec, role), req in zip(chosen, reqs, strict=True):
        reply = _reply(rec, answers[req.key], identity, role, letters[rec.task])
        updated.append(scorers[rec.task].with_judge(rec, reply))
        result.asked += role == "rescue"
        result.audited += role == "audit"
        result.read += role == "rescue" and reply["status"] == "ok"
        result.failed += reply["status"] == "error"
    folder.append(updated)
    return result


async def _ask_and_close(
    backend: Backend, reqs: list[Request], cache: ResponseCache | None
) -> dict[str, Completion]:
    try:
        return await _ask(backend, reqs, cache)
    finally:
        await backend.aclose()


@dataclass(frozen=True)
class JudgeOptions:
    spec: str
    args: dict[str, str] = field(default_factory=dict)
    max_items: int | None = None
    audit: int = 20
    seed: int = 0
    use_cache: bool = True


def judge_folder(run_dir: str, options: JudgeOptions) -> tuple[JudgeResult, dict[str, Any]]:
    """Judge a finished run folder's rule misses (under its writer lock) and rewrite its summary."""
    from evalkit.run.grading import TaskScorer
    from evalkit.run.rescore import manifest_specs, write_rescored_summary

    folder = RunFolder(run_dir).require()
    with folder.lock("judge"):
        manifest = folder.require_manifest()
        specs = manifest_specs(folder, manifest)
        scorers = {name: TaskScorer(spec) for name, spec in specs.items()}
        result = judge_run(
            folder, scorers, options.spec, options.args, options.max_items, options.audit, options.seed,
            options.use_cache,
        )  # fmt: skip
        summary = write_rescored_summary(folder, manifest, specs, folder.current_records(), rescored=False)
        manifest["judge"] = {
            "model": result.identity,
            "prompt_version": JUDGE_PROMPT_VERSION,
            "asked": result.asked,
            "audited": result.audited,
            "failed": result.failed,
            "skipped_by_cap": result.skipped_cap,
        }
        folder.write_manifest(manifest)
    return result, summary
