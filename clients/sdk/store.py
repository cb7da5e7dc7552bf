"""The store's API with typed methods: what scripts and the CLI use."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc
from google.protobuf import field_mask_pb2

from clients.sdk.calls import (
    PAGE_SIZE,
    StreamListener,
    call,
    enum_value,
    every_page,
    request_id,
    resumable,
    with_heartbeat,
)
from clients.sdk.channel import DEFAULT_STORE, STORE_MODULES, ServiceClient
from clients.sdk.errors import NotFoundError
from clients.sdk.plan import PlanAndReview
from clients.sdk.planning import PlanningCalls
from cw.store.v1 import (
    account_pb2,
    account_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    event_pb2,
    event_pb2_grpc,
    initiative_pb2,
    initiative_pb2_grpc,
    phase_pb2,
    phase_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
)


class StoreClient(PlanningCalls, PlanAndReview, ServiceClient):
    """One client per store address (default: $CW_STORE, else 127.0.0.1:50051). Planning calls:
    clients/sdk/planning.py; editing the plan, review comments, conversations, messages:
    clients/sdk/plan.py."""

    service, address_variable, default_address, modules = "store", "CW_STORE", DEFAULT_STORE, STORE_MODULES

    def bind(self, channel: grpc.Channel) -> None:
        self.initiatives = initiative_pb2_grpc.InitiativeServiceStub(channel)
        self.phases = phase_pb2_grpc.PhaseServiceStub(channel)
        self.tasks = task_pb2_grpc.TaskServiceStub(channel)
        self.agents = agent_pb2_grpc.AgentServiceStub(channel)
        self.projects = project_pb2_grpc.ProjectServiceStub(channel)
        self.accounts = account_pb2_grpc.AccountServiceStub(channel)
        self.events = event_pb2_grpc.EventServiceStub(channel)
        self.bind_planning(channel)
        self.bind_plan_and_review(channel)

    # ---- projects and initiatives

    def create_project(self, name: str, url: str, default_branch: str = "main") -> project_pb2.Project:
        project = project_pb2.Project(name=name, url=url, default_branch=default_branch)
        return call(
            self.projects.CreateProject, project_pb2.CreateProjectRequest(project=project, request_id=request_id())
        )

    def list_projects(self) -> list[project_pb2.Project]:
        return every_page(self.projects.ListProjects, project_pb2.ListProjectsRequest(), "projects")

    def find_project(self, id_or_name: str) -> project_pb2.Project:
        for project in self.list_projects():
            if id_or_name in (project.id, project.name):
                return project
        raise NotFoundError(grpc.StatusCode.NOT_FOUND, f"project {id_or_name!r} not found", "NOT_FOUND")

    def create_initiative(
        self, name: str, project_ids: list[str], provider: str = "", fallback_providers: Sequence[str] = ()
    ) -> initiative_pb2.Initiative:
        """`provider`: what its tasks run on (empty: the orchestrator's default); `fallback_providers`:
        where they go, in order, while every account of theirs rests."""
        made = initiative_pb2.Initiative(name=name, provider=provider, fallback_providers=list(fallback_providers))
        initiative = call(
            self.initiatives.CreateInitiative,
            initiative_pb2.CreateInitiativeRequest(initiative=made, request_id=request_id()),
        )
        if project_ids:
            call(
                self.projects.SetInitiativeProjects,
                project_pb2.SetInitiativeProjectsRequest(initiative_id=initiative.id, project_ids=project_ids),
            )
        return initiative

    def get_initiative(self, initiative_id: str) -> initiative_pb2.Initiative:
        return call(self.initiatives.GetInitiative, initiative_pb2.GetInitiativeRequest(id=initiative_id))

    def list_initiatives(self, status: str = "") -> list[initiative_pb2.Initiative]:
        """Every initiative, or those in one status (`pending_review`: all phases merged)."""
        request = initiative_pb2.ListInitiativesRequest()
        if status:
            request.status = enum_value(initiative_pb2.InitiativeStatus, status)
        return every_page(self.initiatives.ListInitiatives, request, "initiatives")

    def initiative_projects(self, initiative_id: str) -> list[project_pb2.Project]:
        request = project_pb2.ListInitiativeProjectsRequest(initiative_id=initiative_id)
        return list(call(self.projects.ListInitiativeProjects, request).projects)

    # ---- phases and tasks

    def create_phase(self, initiative_id: str, name: str, after: Sequence[str] = ()) -> phase_pb2.Phase:
        """The phase and the phases it waits for, in one transaction: a bad `after` creates nothing."""
        request = phase_pb2.CreatePhaseRequest(
            phase=phase_pb2.Phase(initiative_id=initiative_id, name=name),
            request_id=request_id(),
            depends_on_phase_ids=list(after),
        )
        return call(self.phases.CreatePhase, request)

    def get_phase(self, phase_id: str) -> phase_pb2.Phase:
        return call(self.phases.GetPhase, phase_pb2.GetPhaseRequest(id=phase_id))

    def phase_dependencies(self, phase_id: str) -> list[phase_pb2.Phase]:
        """The phases `phase_id` waits for (its `--after` edges)."""
        request = phase_pb2.ListPhaseDependenciesRequest(phase_id=phase_id)
        return list(call(self.phases.ListPhaseDependencies, request).phases)

    def phase_dependents(self, phase_id: str) -> list[phase_pb2.Phase]:
        """The phases that wait for `phase_id`."""
        request = phase_pb2.ListPhaseDependentsRequest(phase_id=phase_id)
        return list(call(self.phases.ListPhaseDependents, request).phases)

    def list_phases(self, initiative_id: str) -> list[phase_pb2.Phase]:
        return every_page(self.phases.ListPhases, phase_pb2.ListPhasesRequest(initiative_id=initiative_id), "phases")

    def create_task(
        self,
        phase_id: str,
        name: str,
        *,
        description: str = "",
        after: Sequence[str] = (),
        priority: str = "medium",
        category: str = "execute",
        reopen: bool = False,
        provider: str = "",
    ) -> task_pb2.Task:
        """The task and the tasks it waits for, in one transaction: a bad `after` creates nothing.
        A COMPLETED phase takes it only with `reopen` (the phase runs and is reviewed again).
        `provider`: what its runs use (empty: its initiative's, else the orchestrator's default)."""
        phase = self.get_phase(phase_id)
        task = task_pb2.Task(
            initiative_id=phase.initiative_id,
            phase_id=phase.id,
            name=name,
            description=description,
            priority=enum_value(task_pb2.TaskPriority, priority),
            category=enum_value(task_pb2.TaskCategory, category),
            provider=provider,
        )
        request = task_pb2.CreateTaskRequest(
            task=task, request_id=request_id(), depends_on_task_ids=list(after), reopen_phase=reopen
        )
        return call(self.tasks.CreateTask, request)

    def get_task(self, task_id: str) -> task_pb2.Task:
        return call(self.tasks.GetTask, task_pb2.GetTaskRequest(id=task_id))

    def list_tasks(self, phase_id: str = "", status: str = "", initiative_id: str = "") -> list[task_pb2.Task]:
        request = task_pb2.ListTasksRequest(phase_id=phase_id, initiative_id=initiative_id)
        if status:
            request.status = enum_value(task_pb2.TaskStatus, status)
        return every_page(self.tasks.ListTasks, request, "tasks")

    def task_dependencies(self, task_id: str = "", initiative_id: str = "") -> list[task_pb2.TaskDependency]:
        """`--after` edges: those touching `task_id` (both ways), or every edge of an initiative."""
        request = task_pb2.ListTaskDependenciesRequest(task_id=task_id, initiative_id=initiative_id)
        return every_page(self.tasks.ListTaskDependencies, request, "dependencies")

    # ---- agents and accounts

    def list_agents(
        self, status: str = "", task_id: str = "", initiative_id: str = "", name: str = ""
    ) -> list[agent_pb2.Agent]:
        request = agent_pb2.ListAgentsRequest(task_id=task_id, initiative_id=initiative_id, name=name)
        if status:
            request.status = enum_value(agent_pb2.AgentStatus, status)
        return every_page(self.agents.ListAgents, request, "agents")

    def get_agent(self, agent_id: str) -> agent_pb2.Agent:
        return call(self.agents.GetAgent, agent_pb2.GetAgentRequest(id=agent_id))

    def resolve_agent(self, id_or_name: str) -> agent_pb2.Agent:
        """The agent with this id, or else with this name (`tidy-jackal`): what people type."""
        try:
            return self.get_agent(id_or_name)
        except NotFoundError:
            named = self.list_agents(name=id_or_name)
        if not named:
            raise NotFoundError(grpc.StatusCode.NOT_FOUND, f"agent {id_or_name!r} not found", "NOT_FOUND")
        return named[0]

    def create_account(
        self, email: str, provider: str, credentials: str, config_json: str = "", max_concurrent_agents: int = 0
    ) -> account_pb2.Account:
        """`max_concurrent_agents`: at most this many agents use it at once (0: no cap)."""
        account = account_pb2.Account(
            email=email,
            provider=provider,
            credentials=credentials,
            config_json=config_json,
            max_concurrent_agents=max_concurrent_agents,
        )
        return call(
            self.accounts.CreateAccount, account_pb2.CreateAccountRequest(account=account, request_id=request_id())
        )

    def list_accounts(self) -> list[account_pb2.Account]:
        return every_page(self.accounts.ListAccounts, account_pb2.ListAccountsRequest(), "accounts")

    def update_account_credentials(
        self, account_id: str, credentials: str, config_json: str = ""
    ) -> account_pb2.Account:
        """New credentials (and config, when given); the store clears a refusal's reason with them."""
        account = account_pb2.Account(id=account_id, credentials=credentials, config_json=config_json)
        paths = ["credentials", "config_json"] if config_json else ["credentials"]
        request = account_pb2.UpdateAccountRequest(account=account, update_mask=field_mask_pb2.FieldMask(paths=paths))
        return call(self.accounts.UpdateAccount, request)

    def set_account_cap(self, account_id: str, max_concurrent_agents: int) -> account_pb2.Account:
        """At most this many agents use the account at once (0: no cap)."""
        account = account_pb2.Account(id=account_id, max_concurrent_agents=max_concurrent_agents)
        mask = field_mask_pb2.FieldMask(paths=["max_concurrent_agents"])
        return call(self.accounts.UpdateAccount, account_pb2.UpdateAccountRequest(account=account, update_mask=mask))

    def set_initiative_providers(
        self, initiative_id: str, provider: str | None = None, fallback_providers: Sequence[str] | None = None
    ) -> initiative_pb2.Initiative:
        """Its provider ("" clears it) and/or its fallback providers, in order (empty clears them);
        None leaves that part as it is."""
        initiative = initiative_pb2.Initiative(id=initiative_id)
        paths: list[str] = []
        if provider is not None:
            initiative.provider = provider
            paths.append("provider")
        if fallback_providers is not None:
            initiative.fallback_providers.extend(fallback_providers)
            paths.append("fallback_providers")
        request = initiative_pb2.UpdateInitiativeRequest(
            initiative=initiative, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        return call(self.initiatives.UpdateInitiative, request)

    # ---- events

    def list_events(
        self, after_sequence: int = 0, types: Sequence[str] = (), initiative_id: str = ""
    ) -> Iterator[event_pb2.Event]:
        """The log as it is now, oldest first."""
        while True:
            request = event_pb2.ListEventsRequest(
                after_sequence=after_sequence, types=types, initiative_id=initiative_id, page_size=PAGE_SIZE
            )
            page = call(self.events.ListEvents, request)
            yield from page.events
            if not page.events:
                return
            after_sequence = page.last_sequence

    def head_sequence(self) -> int:
        """The newest sequence in the log: where to start following only what happens from now on."""
        return call(self.events.ListEvents, event_pb2.ListEventsRequest(page_size=1)).head_sequence

    def watch_events(
        self,
        after_sequence: int = 0,
        types: Sequence[str] = (),
        initiative_id: str = "",
        heartbeat_seconds: float | None = None,
        on_state: StreamListener | None = None,
    ) -> Iterator[event_pb2.Event]:
        """Replays, then follows; survives dropped connections without a gap or a duplicate, telling
        `on_state` when the store is lost and when it is back (see `resumable`). With
        `heartbeat_seconds`, an idle stream yields heartbeats (sequence 0) that often."""

        def open_stream(after: int) -> Iterator[event_pb2.Event]:
            request = event_pb2.WatchEventsRequest(after_sequence=after, types=types, initiative_id=initiative_id)
            return self.events.WatchEvents(with_heartbeat(request, heartbeat_seconds))

        return resumable(open_stream, after_sequence, on_state=on_state, heartbeats=heartbeat_seconds is not None)

    def set_budget(
        self, kind: str, row_id: str, tokens: int | None, usd: float | None
    ) -> task_pb2.Task | initiative_pb2.Initiative:
        """The budget of a task or initiative (`kind`); None clears that part."""
        mask = field_mask_pb2.FieldMask(paths=["budget_tokens", "budget_usd"])
        if kind == "task":
            task = task_pb2.Task(id=row_id, budget_tokens=tokens, budget_usd=usd)
            return call(self.tasks.UpdateTask, task_pb2.UpdateTaskRequest(task=task, update_mask=mask))
        initiative = initiative_pb2.Initiative(id=row_id, budget_tokens=tokens, budget_usd=usd)
        request = initiative_pb2.UpdateInitiativeRequest(initiative=initiative, update_mask=mask)
        return call(self.initiatives.UpdateInitiative, request)
