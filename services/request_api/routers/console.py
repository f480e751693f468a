"""``/console``: the web console for people, another adapter over the API's own commands,
queries and identity (``request_api.console`` holds its forms, session and templates)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from exporter.contracts.base import utcnow
from exporter.contracts.request import ExportType
from exporter.domain.access import Principal
from exporter.domain.job_life import JobStatus
from request_api import commands, queries
from request_api.console import forms, session
from request_api.console.pages import TEMPLATES, ZONE_COOKIE, zone_of
from request_api.errors import ApiError
from request_api.http import RuntimeDep
from request_api.preconditions import parse
from request_api.queries import Pagination
from request_api.views import job_view

router = APIRouter(prefix="/console", include_in_schema=False)
MAX_FORM_FIELDS = 600
PAGE_SIZE = 20
# What the form carries beside the request's own fields.
NOT_FIELDS = (session.CSRF_FIELD, "key", "version")


async def _caller(request: Request) -> Principal:
    """The API's identity; without one (or with one it refuses), the sign-in page. Only the
    gateway's secret is refused outright: signing in again would not bring it."""
    request.app.state.identity.check_gateway(request.headers)
    try:
        return await session.console_principal(request)
    except (session.SignInNeeded, HTTPException) as refused:
        if isinstance(refused, HTTPException) and refused.status_code not in (400, 401):
            raise
        raise HTTPException(status_code=303, headers={"Location": "/console/login"}) from refused


Caller = Annotated[Principal, Depends(_caller)]


async def form_of(request: Request, csrf: bool = True) -> dict[str, str]:
    """The urlencoded form (bounded by the app's body limit and a field count), CSRF-checked."""
    try:
        body = (await request.body()).decode()
        form = dict(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError as error:  # not UTF-8, or more fields than any form of the console has
        raise HTTPException(status_code=400, detail=f"Unreadable form: {error}") from error
    if csrf:
        session.check_csrf(request, form)
    return form


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    zone = zone_of(request.cookies.get(ZONE_COOKIE))
    context |= {"zone": zone, "csrf": session.csrf_token(request), "now": utcnow()}
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    session.keep_csrf(request, response)
    response.headers["Cache-Control"] = "no-store"
    return response


def see(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


@router.get("")
async def home() -> RedirectResponse:
    return see("/console/exports")


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return page(request, "login.html", tokens=request.app.state.identity.tokens, problem="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    response = see("/console/exports")
    try:
        session.sign_in(response, request, form)
    except HTTPException as refused:
        tokens = request.app.state.identity.tokens
        return page(request, "login.html", 400, tokens=tokens, problem=refused.detail, form=form)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_of(request)
    response = see("/console/login")
    response.delete_cookie(session.SESSION, path="/console")
    return response


@router.get("/zone")
async def choose_zone(request: Request, tz: Annotated[str, Query(max_length=100)] = "UTC") -> Response:
    """The zone every time is shown in (a preference, not a change of data: a GET)."""
    response = see("/console/exports")
    session.set_cookie(response, request, ZONE_COOKIE, zone_of(tz), 365 * 24 * 3600)
    return response


@router.get("/exports")
async def exports_page(
    request: Request,
    caller: Caller,
    runtime: RuntimeDep,
    q: Annotated[str, Query(max_length=200)] = "",
    type: ExportType | None = None,
    status: Annotated[str | None, Query(pattern="^(active|paused|finished|deleted)?$")] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """A page of the caller's exports (the API's list), each with its latest job; ``q`` keeps
    those of the page whose name, id or targets contain it."""
    pagination = Pagination(page=page_number, pageSize=PAGE_SIZE)
    listed = await queries.list_exports(runtime, caller, pagination, type=type, status=status or None)
    items = [item for item in listed["items"] if not q or q.lower() in _searchable(item)]
    ttl = timedelta(seconds=runtime.settings.api.download_link_ttl_seconds)
    runs = await queries.latest_runs(runtime, caller, [item["id"] for item in items], ttl, lambda _: True)
    latest = {run.record.request.id: run.job for run in runs}
    rows = [(item, _job(latest.get(item["id"]))) for item in items]
    total = listed.get("totalCount", 0)
    filters = {"q": q, "type": type.value if type else "", "status": status or ""}
    pages = max(1, -(-total // PAGE_SIZE))
    context = {"rows": rows, "filters": filters, "page": page_number, "pages": pages, "total": total}
    return page(request, "exports.html", **context)


def _searchable(item: dict[str, Any]) -> str:
    params = [entry.get("params") or {} for entry in item["items"]]
    targets = " ".join(str(param.get("target", {}).get("value", "")) for param in params)
    return f"{item.get('name') or ''} {item['id']} {targets}".lower()


def _job(job: Any) -> dict[str, Any] | None:
    return None if job is None else job_view(job)


def _form_page(
    request: Request, form: forms.ExportForm, export_id: str | None, version: Any = "", status_code: int = 200
) -> HTMLResponse:
    context = {"form": form, "export_id": export_id, "version": version, "key": session.new_key()}
    return page(request, "export_form.html", status_code, **context)


@router.get("/exports/new")
async def new_export(request: Request, caller: Caller) -> HTMLResponse:
    return _form_page(request, forms.blank_form(), None)


@router.get("/exports/{export_id}/edit")
async def edit_export(request: Request, export_id: str, caller: Caller, runtime: RuntimeDep) -> HTMLResponse:
    export = await queries.get_export(runtime, caller, export_id)
    return _form_page(request, forms.form_of(export), export_id, export["version"])


def _rows(values: dict[str, str], prefix: str) -> int:
    """How many rows of a repeated group the submitted form had, plus a blank one."""
    depth = len(prefix.split("."))
    parts = [name.split(".") for name in values if name.startswith(f"{prefix}.")]
    indexes = {int(part[depth]) for part in parts if len(part) > depth and part[depth].isdigit()}
    return min(forms.MAX_ROWS, max(indexes, default=-1) + 2)


def _submitted(form: dict[str, str]) -> forms.ExportForm:
    values = {name: value for name, value in form.items() if name not in NOT_FIELDS}
    messages = _rows(values, "notification.messages")
    return forms.ExportForm(values, items=_rows(values, "items"), messages=messages)


@router.post("/exports")
async def save_new_export(request: Request, caller: Caller, runtime: RuntimeDep) -> Response:
    return await _save(request, caller, runtime, None)


@router.post("/exports/{export_id}")
async def save_export(request: Request, export_id: str, caller: Caller, runtime: RuntimeDep) -> Response:
    return await _save(request, caller, runtime, export_id)


async def _save(request: Request, caller: Principal, runtime: Any, export_id: str | None) -> Response:
    """The API's create or update, with its validation messages on their fields."""
    raw = await form_of(request)
    form = _submitted(raw)
    spec, form.errors = forms.validated(form.values, forms.field_names(form))
    version = raw.get("version", "")
    if spec is None:
        return _form_page(request, form, export_id, version, 400)
    try:
        if export_id is None:
            key = raw.get("key") or None
            answer = await commands.create_export(runtime, caller, spec, key[:200] if key else None)
            export_id = str(answer.body["id"])
        else:
            condition = parse("If-Match", f'"{version}"') if version.isdigit() else None
            await commands.update_export(runtime, caller, export_id, spec, condition)
    except ApiError as refused:
        form.errors = {"": [refused.message]}
        return _form_page(request, form, export_id, version, refused.status_code)
    return see(f"/console/exports/{export_id}")


@router.post("/preview")
async def preview(request: Request, caller: Caller) -> HTMLResponse:
    """The next runs of the form as typed, by the scheduler's rules, in the request's zone."""
    form = _submitted(await form_of(request, csrf=False))
    spec, errors = forms.validated(form.values, forms.field_names(form))
    runs = forms.next_runs(spec, utcnow()) if spec is not None else []
    zone = form.values.get("format.timezone") or "UTC"
    return page(request, "preview.html", runs=runs, run_zone=zone, errors=errors)


@router.get("/exports/{export_id}")
async def export_page(
    request: Request,
    export_id: str,
    caller: Caller,
    runtime: RuntimeDep,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    notice: Annotated[str, Query(max_length=300)] = "",
) -> HTMLResponse:
    """One export, its next runs, and its jobs (newest first), running ones live."""
    export = await queries.get_export(runtime, caller, export_id)
    pagination = Pagination(page=page_number, pageSize=PAGE_SIZE)
    jobs = await queries.list_jobs(runtime, caller, export_id, pagination)
    pages = max(1, -(-jobs.get("totalCount", 0) // PAGE_SIZE))
    context = {"export": export, "jobs": jobs["items"], "page": page_number, "pages": pages, "notice": notice}
    return page(request, "export.html", **context)


@router.post("/exports/{export_id}/run")
async def run_now(request: Request, export_id: str, caller: Caller, runtime: RuntimeDep) -> Response:
    await form_of(request)
    try:
        await commands.run_export(runtime, caller, export_id)
    except ApiError as refused:
        return see(f"/console/exports/{export_id}?notice={quote(refused.message[:300])}")
    return see(f"/console/exports/{export_id}?notice=Queued")


@router.get("/jobs")
async def jobs_page(
    request: Request,
    caller: Caller,
    runtime: RuntimeDep,
    status: JobStatus | None = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """The tenant's jobs the caller may read (the API's ``GET /jobs``), running ones live."""
    pagination = Pagination(page=page_number, pageSize=PAGE_SIZE)
    jobs = await queries.list_all_jobs(runtime, caller, queries.JobQuery(status=status), pagination)
    pages = max(1, -(-jobs.get("totalCount", 0) // PAGE_SIZE))
    context = {"jobs": jobs["items"], "page": page_number, "pages": pages, "status": status or ""}
    return page(request, "jobs.html", **context, statuses=[value.value for value in JobStatus])


@router.get("/jobs/{job_id}/row")
async def job_row(request: Request, job_id: str, caller: Caller, runtime: RuntimeDep) -> HTMLResponse:
    """One job's row, polled by the page while the job runs."""
    return page(request, "job_row.html", job=await queries.get_job(runtime, caller, job_id))


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, job_id: str, caller: Caller, runtime: RuntimeDep) -> Response:
    """htmx swaps the job's row; a browser without scripts goes back to the export's page."""
    await form_of(request)
    problem = ""
    try:
        job = await commands.cancel_job(runtime, caller, job_id)
    except ApiError as refused:
        job, problem = await queries.get_job(runtime, caller, job_id), refused.message
    if request.headers.get("hx-request") != "true":
        return see(f"/console/exports/{job['requestId']}?notice={quote(problem or 'Cancelled')}")
    return page(request, "job_row.html", job=job, problem=problem)


@router.get("/jobs/{job_id}/download")
async def download(
    job_id: str, caller: Caller, runtime: RuntimeDep, file: Annotated[int, Query(ge=0, le=10_000)] = 0
) -> RedirectResponse:
    """The API's presigned link for one file (the archive is one of the files)."""
    link = await commands.download_link(runtime, caller, job_id, file)
    return RedirectResponse(link.url, status_code=307)
