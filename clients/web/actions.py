"""What a form post does: one function per action, named in the URL (`/act/{action}/{target}`),
each a call the CLI makes for the same verb. Each returns where to go next ("" for the form's
`back`). Synchronous: the app runs them in a thread."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from starlette.datastructures import FormData

from clients.cli.diff_views import place_in_diff
from clients.sdk import InvalidArgumentError
from clients.web.views import Clients

Action = Callable[[Clients, str, FormData], str]
PLANNING_CATEGORIES = ("plan", "discuss", "detail", "refine")


def text(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


def _required(form: FormData, name: str) -> str:
    value = text(form, name)
    if not value:
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, f"{name} is empty")
    return value


def approve(clients: Clients, phase_id: str, _form: FormData) -> str:
    clients.orchestrator.approve_phase(phase_id)
    return ""


def merge(clients: Clients, phase_id: str, _form: FormData) -> str:
    clients.orchestrator.merge_phase(phase_id)
    return ""


def request_changes(clients: Clients, phase_id: str, _form: FormData) -> str:
    clients.orchestrator.request_changes(phase_id)
    return f"/phases/{phase_id}"


def comment(clients: Clients, phase_id: str, form: FormData) -> str:
    """A review comment on a line of the phase's diff; the line's type comes from the diff itself."""
    path, line = _required(form, "file"), _required(form, "line")
    if not line.isdigit():
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "line is not a number")
    old = text(form, "side") == "old"
    found = place_in_diff(clients.orchestrator.phase_diff(phase_id), path, int(line), old, text(form, "project"))
    body = _required(form, "body")
    clients.store.create_comment(phase_id, found.path, int(line), found.kind, body, project_id=found.project_id)
    return ""


def resolve(clients: Clients, comment_id: str, _form: FormData) -> str:
    clients.store.resolve_comment(comment_id, True)
    return ""


def reopen(clients: Clients, comment_id: str, _form: FormData) -> str:
    clients.store.resolve_comment(comment_id, False)
    return ""


def delete_comment(clients: Clients, comment_id: str, _form: FormData) -> str:
    clients.store.delete_comment(comment_id)
    return ""


def retry(clients: Clients, task_id: str, _form: FormData) -> str:
    clients.orchestrator.retry_blocked_task(task_id)
    return ""


def stop(clients: Clients, agent_id: str, _form: FormData) -> str:
    clients.orchestrator.stop_agent(agent_id)
    return ""


def answer(clients: Clients, agent_id: str, form: FormData) -> str:
    """Every `answer:QID` field of the form, as the agent's answers."""
    answers = {
        key.removeprefix("answer:"): str(value) for key, value in form.multi_items() if key.startswith("answer:")
    }
    if not answers:
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "no answers given")
    clients.orchestrator.answer_questions(agent_id, answers)
    return ""


def reply(clients: Clients, message_id: str, form: FormData) -> str:
    clients.store.reply(message_id, _required(form, "text"))
    return ""


def chat_phase(clients: Clients, phase_id: str, form: FormData) -> str:
    clients.orchestrator.send_chat_message("phase", phase_id, _required(form, "content"))
    return ""


def chat_task(clients: Clients, task_id: str, form: FormData) -> str:
    clients.orchestrator.send_chat_message("task", task_id, _required(form, "content"))
    return ""


def planning(category: str) -> Action:
    """`plan` and `discuss` take an initiative, `detail` a phase, `refine` a page: a planning task
    runs at once; its page shows its agent, its questions and then its proposals."""

    def run(clients: Clients, subject_id: str, form: FormData) -> str:
        store = clients.store
        if category in ("plan", "discuss"):
            initiative = store.get_initiative(subject_id)
            store.root_page(initiative.id)
            initiative_id, title, target = initiative.id, initiative.name, ""
        elif category == "detail":
            phase = store.get_phase(subject_id)
            initiative_id, title, target = phase.initiative_id, phase.name, phase.id
        else:
            page = store.get_page(subject_id)
            initiative_id, title, target = page.initiative_id, page.title, page.id
        name = f"{category.capitalize()} {title}"
        task = store.create_planning_task(initiative_id, category, name, text(form, "instructions"), target)
        clients.orchestrator.dispatch_task(task.id)
        return f"/tasks/{task.id}"

    return run


def decide(clients: Clients, initiative_id: str, form: FormData) -> str:
    """Accepts or dismisses the ticked proposals (`decision` is the button pressed)."""
    chosen = [str(value) for value in form.getlist("proposal")]
    if not chosen:
        raise InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "no proposal ticked")
    if text(form, "decision") == "dismiss":
        clients.store.dismiss_proposals(chosen)
    else:
        clients.store.accept_proposals(chosen)
    return f"/initiatives/{initiative_id}"


def revert(clients: Clients, change_set_id: str, _form: FormData) -> str:
    clients.store.revert_change_set(change_set_id)
    return ""


def edit_page(clients: Clients, page_id: str, form: FormData) -> str:
    clients.store.set_page_content(page_id, str(form.get("content", "")))
    return f"/pages/{page_id}"


def deliver(clients: Clients, initiative_id: str, _form: FormData) -> str:
    clients.orchestrator.deliver_initiative(initiative_id)
    return ""


ACTIONS: dict[str, Action] = {
    "approve": approve,
    "merge": merge,
    "request-changes": request_changes,
    "comment": comment,
    "resolve": resolve,
    "reopen": reopen,
    "delete-comment": delete_comment,
    "retry": retry,
    "stop": stop,
    "answer": answer,
    "reply": reply,
    "chat-phase": chat_phase,
    "chat-task": chat_task,
    "decide": decide,
    "revert": revert,
    "edit-page": edit_page,
    "deliver": deliver,
    **{category: planning(category) for category in PLANNING_CATEGORIES},
}
