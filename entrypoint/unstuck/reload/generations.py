"""The reload server's generation state machine, with the operating system passed in.

A *generation* is one worker process serving on the shared listening socket: the app (kind "app") or,
while the app cannot serve, unstuck's error page (kind "responder"). Each has one `state` (NEW, PENDING,
SERVING, RETIRING, STOPPING, EXITED), changed only along TRANSITIONS. At any time there is at most one
`current` generation (SERVING, or STOPPING once the reload server stops: the one whose answers count), at
most one `pending` app generation (PENDING: importing and starting beside it), and any number of `retiring`
ones finishing their requests after SIGTERM. The machine decides when to start, promote, retire and kill
generations: on change batches (after a settle window for half-done saves and bursts), on reports from the
workers, on exits (with crash backoff), after a dependency install, on timers, and on stop.

It is pure in the way supervisor's `process.py` is: it reads the world (the clock, the environment check,
which dependency files are pending) through an `Ops` object, and every handler returns the actions to take
(events.Spawn, events.Signal ...) instead of taking them, so tests drive every transition with a fake world
in milliseconds, and the process-owning reload server is a thin shell that carries them out.
"""

from __future__ import annotations

import collections
import signal
from dataclasses import dataclass, field
from typing import Callable, Protocol

from unstuck.reload import events as ev
from unstuck.backoff import Backoff
from unstuck.errors.failure import Failure
from unstuck.logs import log

# A batch this large (a checkout, a sync) waits for the rest of it before reloading.
BURST_FILES = 10
RECENT_RELOADS = 20
PHASES = ("saved", "delivered", "applied", "forked", "imported", "ready", "served", "old_gone")


@dataclass(frozen=True)
class Policy:
    grace: float = 2.0  # seconds a retiring generation may take to finish its requests
    backoff_max: float = 10.0
    settle_s: float = 0.3  # how long a half-done save or a burst is given to complete
    slow_start_s: float = 0.8  # a first import running this long gets a "starting" page in front
    kill_margin_s: float = 1.0  # how long beyond the grace a retiring generation has before SIGKILL


# A generation's states.
NEW = "new"  # made, not yet placed (its process is started by the Spawn action)
PENDING = "pending"  # an app generation importing and starting beside the current one
SERVING = "serving"  # the current one: its answers count
RETIRING = "retiring"  # replaced: SIGTERM sent (or exiting by itself after a held failure), finishing its requests
STOPPING = "stopping"  # the current one when the reload server stops: SIGTERM sent, still the one the status names
EXITED = "exited"  # its process is gone

TRANSITIONS = {
    NEW: {PENDING, SERVING},
    PENDING: {SERVING, RETIRING, EXITED},  # promoted; superseded, held or stopped; died while loading
    SERVING: {RETIRING, STOPPING, EXITED},  # replaced; stopped; crashed
    RETIRING: {EXITED},
    STOPPING: {EXITED},
    EXITED: set(),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass(eq=False)
class Generation:
    id: int
    kind: str  # "app" or "responder"
    trigger: str
    failure: Failure | None = None
    pid: int | None = None
    state: str = NEW  # changed only by Generations._to, along TRANSITIONS
    kill_at: float | None = None  # armed when it is told to stop: SIGKILL then
    replaced: int | None = None  # the generation it took over from
    phases: dict[str, float] = field(default_factory=dict)  # phase name -> monotonic time
    changes: frozenset[tuple[str, str]] | None = None  # the saves that caused it: (kind, path under APP_DIR)
    source: str = ""  # how its process was made (ev.Started.source)
    fresh: bool = False  # a new interpreter, not forked from the warm process (ev.Started.forked False)
    # A fresh interpreter (never forked from the warm process), started because a fast path's generation
    # failed on the same saved code: that one's source and failure, to be told apart once this one is done.
    verifies: tuple[str, Failure] | None = None

    def __repr__(self) -> str:  # short, for logs and test failures
        return f"<gen {self.id} {self.kind} pid={self.pid} {self.state}>"


class Ops(Protocol):
    """What the machine reads of the world (what it changes there, it returns as actions)."""

    def now(self) -> float: ...  # monotonic seconds
    def wall(self) -> float: ...  # epoch seconds, for "N s ago"
    def preflight(self) -> Failure | None: ...  # an environment problem that forbids importing the app
    def dependencies_pending(self) -> tuple[str, ...]: ...  # dependency files not installed yet
    def app_label(self) -> str: ...  # the app being loaded, for the "starting" page


class World(Protocol):
    """What carries out the machine's actions (the reload server; a test's fake OS)."""

    def spawn(self, gen: Generation) -> None: ...
    def signal(self, gen: Generation, signum: int) -> None: ...
    def serving(self, gen: Generation | None) -> None: ...  # gen answers from now on (None: nobody, stopping)
    def install(self) -> None: ...  # install the pending dependency files; an ev.Installed comes back
    def learn_modules(self, modules: tuple[str, ...], app_modules: tuple[tuple, ...]) -> None: ...
    def rebuild_warm(self) -> None: ...
    def prepare_layer(self) -> None: ...  # a reload is done: the warm process may build its app layer
    def restart_procs(self, reason: str) -> None: ...
    def distrust(self, source: str) -> str: ...  # narrow the fast path that was wrong; says how, for the log


# Each action, carried out on the world; what the world answers (only Distrust answers) comes back as an event.
PERFORM = {
    ev.Spawn: lambda world, a: world.spawn(a.gen),
    ev.Signal: lambda world, a: world.signal(a.gen, a.signum),
    ev.Serve: lambda world, a: world.serving(a.gen),
    ev.Install: lambda world, a: world.install(),
    ev.LearnModules: lambda world, a: world.learn_modules(a.modules, a.app_modules),
    ev.RebuildWarm: lambda world, a: world.rebuild_warm(),
    ev.PrepareLayer: lambda world, a: world.prepare_layer(),
    ev.RestartProcs: lambda world, a: world.restart_procs(a.reason),
    ev.Distrust: lambda world, a: ev.FastPathNarrowed(f"{a.note} {world.distrust(a.source)}"),
}


def carry_out(actions: list, world: World, feed: Callable) -> None:
    """Carry out the machine's actions in order; `feed` hands an event the world answers with to the machine
    (and carries out its actions in turn)."""
    for action in actions:
        answer = PERFORM[type(action)](world, action)
        if answer is not None:
            feed(answer)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def describe_changes(paths: frozenset[tuple[str, str]] | set) -> str:
    names = sorted({(path, kind) for kind, path in paths})
    head = ", ".join(f"{name} {kind}" for name, kind in names[:3])
    return head + (f" and {len(names) - 3} more" if len(names) > 3 else "")


class Generations:
    def __init__(self, ops: Ops, policy: Policy, strict: bool = False) -> None:
        """`strict`: an illegal transition raises (tests); else it is logged once and made anyway."""
        self.ops = ops
        self.policy = policy
        self.strict = strict
        self.illegal_seen: set[tuple[str, str]] = set()
        self.live: dict[int, Generation] = {}  # every generation not EXITED, by id (in the order they were made)
        self._actions: list = []  # what the handler being run asks of the world
        self.backoff = Backoff(policy.backoff_max)
        self.timers: dict[str, float] = {}  # "settle", "restart", "slow_start" -> due time
        self.unsettled: dict[str, str] = {}  # path -> change kind, waiting for the settle window
        self.unsettled_facts: dict[str, float | bool] = {}
        self.half_done: set[str] = set()  # unsettled paths last read gone or empty: the window waits for them
        self.whole_window = False  # a burst or a new directory: the window runs out (nothing says it is complete)
        self.delivered: dict[str, object] = {}  # path -> what it read as when its last batch came (fingerprint.py)
        self.stopping = False
        self.installing = False
        self.install_again = False
        self.after_install: str | None = None  # a reload waiting for the install to finish
        self.code_waits = False  # ... with code changed in the same batch (reloaded even if the install fails)
        self.deps_error: str | None = None
        self.deps_warning: str | None = None  # installed, but not the project itself: why
        self.environment: Failure | None = None  # preflight problem: nothing is imported while it holds
        self.counters = collections.Counter(
            {"changes": 0, "reloads": 0, "failures": 0, "crashes": 0, "restarts": 0, "installs": 0, "superseded": 0,
             "killed": 0, "verified": 0, "fast_path_wrong": 0})
        self.restart_delay: float | None = None  # the wait chosen after the last crash
        self.recent: collections.deque[dict] = collections.deque(maxlen=RECENT_RELOADS)
        self.app: dict | None = None  # what the last good generation served
        # Each time a fast path showed a failure that a fresh interpreter did not (for `unstuck status`).
        self.fast_path_notes: collections.deque[str] = collections.deque(maxlen=5)
        self.version = 0  # bumped on every handled event: the reload server publishes when it changes
        self._ids = 0

    # -- the generations by state -------------------------------------------------------------------

    @property
    def current(self) -> Generation | None:
        return next((g for g in self.live.values() if g.state in (SERVING, STOPPING)), None)

    @property
    def pending(self) -> Generation | None:
        return next((g for g in self.live.values() if g.state == PENDING), None)

    @property
    def retiring(self) -> list[Generation]:
        return [g for g in self.live.values() if g.state in (RETIRING, STOPPING)]

    def _to(self, gen: Generation, state: str) -> None:
        """The one way a generation's state changes: along TRANSITIONS."""
        if state not in TRANSITIONS[gen.state]:
            if self.strict:
                raise IllegalTransition(f"{gen!r}: {gen.state} -> {state}")
            if (gen.state, state) not in self.illegal_seen:  # once: a bug of unstuck's, not to flood the log
                self.illegal_seen.add((gen.state, state))
                log.error("unstuck bug: generation %d went from %s to %s, which it never should", gen.id,
                          gen.state, state)
        gen.state = state

    # -- inputs: each returns the actions to take ---------------------------------------------------

    def _run(self, handler: Callable, *args) -> list:
        self._actions = []
        handler(*args)
        actions, self._actions = self._actions, []
        return actions

    def _do(self, action) -> None:
        self._actions.append(action)

    def start(self) -> list:
        """Container start: check the environment, install what is missing, start the first generation."""
        return self._run(self._start)

    def handle(self, event) -> list:
        handler = self.HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not an event: {event!r}")
        self.version += 1
        return self._run(handler, self, event)

    def on_timers(self) -> list:
        return self._run(self._on_timers)

    def stop(self) -> list:
        return self._run(self._stop)

    def _start(self) -> None:
        self.version += 1
        if self._environment_blocks():
            return
        if self.ops.dependencies_pending():
            # The app cannot import without them: say so on the port and start it once they are in.
            self.after_install = "startup"
            self.code_waits = True
            self._request_install()
            self.show(Failure("starting", "Installing", "installing the project's dependencies; "
                              "the app starts when they are in"))
            return
        self.start_app("startup")  # the Procfile workers start with it: the dependencies are in

    def on_uses(self, event: ev.Uses) -> None:
        if self.current is not None and event.gen == self.current.id and not self.stopping:
            self._do(ev.LearnModules(event.modules, event.app_modules))
            if self.pending is None:  # not while a reload imports: it would compete for the CPU
                self._do(ev.PrepareLayer())

    def on_imported(self, event: ev.Imported) -> None:
        self._phase(event.gen, "imported", event.at)

    def on_stop_requested(self, event: ev.StopRequested) -> None:
        self._stop()

    def on_fast_path_narrowed(self, event: ev.FastPathNarrowed) -> None:
        self.fast_path_notes.append(event.note)
        log.warning("%s", event.note)

    def _on_timers(self) -> None:
        now = self.ops.now()
        due = [name for name, when in self.timers.items() if when <= now]
        for name in due:
            self.timers.pop(name, None)
        if due:
            self.version += 1
        if "settle" in due:
            self.apply_changes()
        if "restart" in due:
            self.restart_after_crash()
        if "slow_start" in due and self.current is None and self.pending is not None:
            self.show(Failure("starting", "Starting", f"importing {self.ops.app_label()} "
                              f"(for more than {self.policy.slow_start_s:g} s)"))
        for gen in self.retiring:
            if gen.kill_at is not None and now >= gen.kill_at:
                log.warning("pid %s did not stop within %.1f s; killing it", gen.pid, self.policy.grace)
                gen.kill_at = None
                self.version += 1
                self.counters["killed"] += 1
                self._do(ev.Signal(gen, signal.SIGKILL))

    def next_deadline(self) -> float | None:
        deadlines = list(self.timers.values()) + [g.kill_at for g in self.retiring if g.kill_at is not None]
        return min(deadlines) if deadlines else None

    @property
    def finished(self) -> bool:
        """Stopped, with every generation gone: the reload server may exit."""
        return self.stopping and not self.live

    # -- changes ------------------------------------------------------------------------------------

    def on_changes(self, batch: ev.Changes) -> None:
        if self.stopping:
            return
        if self._delivered_already(batch):
            log.debug("%s: read as when last delivered, not a new save", describe_changes(batch.paths))
            return
        for kind, path in batch.paths:
            self.unsettled[path] = kind
        facts = self.unsettled_facts
        facts["dependencies"] = bool(facts.get("dependencies")) or batch.dependencies
        facts["code"] = bool(facts.get("code")) or batch.code
        for name in ("saved_at", "seen_at"):  # the latest save is the one the user waits for
            value = getattr(batch, name)
            if value is not None:
                facts[name] = max(value, facts.get(name, value))
        # A path read again is as this batch found it: a half-done save completed ends its wait.
        self.half_done.difference_update(path for _, path in batch.paths)
        self.half_done.update(batch.half_done)
        if batch.new_dir or len(batch.paths) >= BURST_FILES:
            self.whole_window = True
            self.timers["settle"] = self.ops.now() + self.policy.settle_s
        elif batch.half_done:
            self.timers["settle"] = self.ops.now() + self.policy.settle_s
        elif "settle" not in self.timers or not (self.half_done or self.whole_window):
            # Nothing (left) to wait for: the empty file got its text, the file renamed away is back.
            self.apply_changes()

    def _delivered_already(self, batch: ev.Changes) -> bool:
        """Every file in the batch reads as it did when its last batch came: more events of a save delivered
        already (an in-place save seen in two batches, both read after its write). Remembers what each read as."""
        prints = dict(batch.fingerprints)
        repeat = bool(batch.paths) and all(
            prints.get(path) is not None and self.delivered.get(path) == prints[path] for _, path in batch.paths)
        for _, path in batch.paths:
            if prints.get(path) is None:
                self.delivered.pop(path, None)
            else:
                self.delivered[path] = prints[path]
        return repeat

    def apply_changes(self) -> None:
        if self.stopping or not self.unsettled:
            return
        paths = frozenset((kind, path) for path, kind in self.unsettled.items())
        facts, self.unsettled, self.unsettled_facts = self.unsettled_facts, {}, {}
        self.half_done.clear()
        self.whole_window = False
        self.timers.pop("settle", None)
        what = describe_changes(paths)
        log.info("change detected: %s", what)
        self.counters["changes"] += 1
        # A fix must not wait out the backoff of the broken code.
        self.backoff.reset()
        self.timers.pop("restart", None)
        phases = {"saved": facts.get("saved_at"), "delivered": facts.get("seen_at"), "applied": self.ops.now()}
        if facts.get("dependencies"):
            if self._environment_blocks():
                return
            if self.ops.dependencies_pending():
                # One reload, once they are installed: the new code may need them.
                self.after_install = what
                self.code_waits = bool(facts.get("code"))
                self._request_install()
                return
        elif self.environment is not None:
            return  # nothing may be imported until the environment is fixed
        self.start_app(what, phases, changes=paths)

    # -- dependencies and environment --------------------------------------------------------------

    def _environment_blocks(self) -> bool:
        problem = self.ops.preflight()
        if problem is None:
            if self.environment is not None:
                log.info("environment fixed: %s no longer applies", self.environment.message)
                self.environment = None
            return False
        if self.environment is None or self.environment.message != problem.message:
            log.error("%s", problem.message)
            self.environment = problem
            self.show(problem)
        return True

    def _request_install(self) -> None:
        if self.installing:  # one install at a time; what changed meanwhile is looked at when it is done
            self.install_again = True
            return
        self.installing = True
        self.counters["installs"] += 1
        self._do(ev.Install())

    def on_installed(self, outcome: ev.Installed) -> None:
        self.installing = False
        if self.stopping:
            return
        files = ", ".join(outcome.files)
        if outcome.ok:
            self.deps_error = None
            self.deps_warning = outcome.warning or None
            log.info("dependencies installed from %s in %.1f s; restarting the app", files, outcome.seconds)
            self._do(ev.RebuildWarm())  # its preloaded modules may be other versions now
        else:
            what = outcome.summary or (outcome.error.splitlines()[0] if outcome.error else "failed")
            # The cause first, in one line (the log's and the status's headline); uv's lines after it.
            self.deps_error = f"installing dependencies from {files} failed: {what}"
            after = ("the previous environment keeps serving" if outcome.had_env else
                     "nothing is installed yet: the app cannot import its dependencies until this is fixed")
            log.error("%s; %s", self.deps_error, after)
            if outcome.error and outcome.error.strip() != what:
                self.deps_error += "\n" + outcome.error.strip()
        if self.install_again:
            self.install_again = False
            if self.ops.dependencies_pending():
                self._request_install()
                return
        # A failed install changed nothing: the app reloads only if its code changed with the dependencies.
        if outcome.ok or (self.after_install is not None and self.code_waits):
            trigger = self.after_install or f"dependencies installed from {files}"
            self.after_install = None
            self.start_app(trigger)
        self.after_install = None

    # -- generations --------------------------------------------------------------------------------

    def _new(self, kind: str, trigger: str, failure: Failure | None = None) -> Generation:
        self._ids += 1
        gen = Generation(self._ids, kind, trigger, failure)
        gen.phases["spawned"] = self.ops.now()
        self.live[gen.id] = gen
        return gen

    def start_app(self, trigger: str, phases: dict | None = None, procs: bool = True,
                  changes: frozenset[tuple[str, str]] | None = None,
                  verifies: tuple[str, Failure] | None = None) -> None:
        """Start a new app generation beside the current one; the newest saved code always wins.
        `procs`: the Procfile workers (re)start with it, on the same saved code (proc_plan.py: after the
        release when one is due; the first time, which is after the dependencies are installed)."""
        if self.stopping or self.environment is not None:
            return
        if self.pending is not None:
            log.info("newer change while a reload was in progress: restarting that reload")
            self.counters["superseded"] += 1
            # SIGTERM, not SIGKILL: it may already accept connections, which must be answered. An import
            # in progress dies at once (Python keeps SIGTERM's default action until uvicorn runs).
            self.retire(self.pending)
        self.timers.pop("restart", None)
        gen = self._new("app", trigger)
        gen.changes = changes
        gen.verifies = verifies
        gen.phases.update({k: v for k, v in (phases or {}).items() if v is not None})
        self._to(gen, PENDING)
        if self.current is None:
            self.timers["slow_start"] = self.ops.now() + self.policy.slow_start_s
        self._do(ev.Spawn(gen))
        if procs:
            self._do(ev.RestartProcs(trigger))

    def show(self, failure: Failure) -> None:
        """Put an error responder in front (no app code is imported in it)."""
        if self.stopping:
            return
        gen = self._new("responder", failure.phase, failure)
        self._do(ev.Spawn(gen))
        self.promote(gen)

    def promote(self, gen: Generation) -> None:
        current = self.current
        if current is not gen:
            if current is not None:
                gen.replaced = current.id
            # Before the old one is retired: its idle connections go to the new one (handoff.py).
            self._do(ev.Serve(gen))
            self.retire(current)
            self._to(gen, SERVING)
        self.timers.pop("slow_start", None)

    def retire(self, gen: Generation | None) -> None:
        if gen is None or gen.state in (RETIRING, STOPPING, EXITED):
            return
        # The current one stays the one the status names until it exits, when nothing replaces it.
        self._to(gen, STOPPING if self.stopping and gen.state == SERVING else RETIRING)
        gen.kill_at = self.ops.now() + self.policy.grace + self.policy.kill_margin_s
        self._do(ev.Signal(gen, signal.SIGTERM))  # uvicorn: stop accepting, finish requests within the grace

    def _phase(self, gen_id: int, name: str, at: float) -> Generation | None:
        gen = self.live.get(gen_id)
        if gen is not None:
            gen.phases[name] = min(at, gen.phases.get(name, at))  # the earliest report of it counts
        return gen

    def on_started(self, event: ev.Started) -> None:
        # Heard twice: from the process itself (the earliest time it ran: the phase) and from whoever
        # started it (its pid).
        gen = self._phase(event.gen, "forked", event.at)
        if gen is not None and event.pid:
            gen.pid = event.pid
        if gen is not None and not event.forked:
            gen.fresh = True
        if gen is not None and event.source:
            gen.source = event.source
            # The warm process's word of the fork comes on its own socket, and may come after the worker's "ready"
            # (its own pipe) was recorded: the reload it made is then said to come from where it did.
            for record in self.recent:
                if record["gen"] == gen.id and record["from"] == "warm process":
                    record["from"] = event.source

    def on_ready(self, event: ev.Ready) -> None:
        gen = self._phase(event.gen, "ready", event.at)
        if gen is None:
            return
        if gen.state != PENDING or self.stopping:
            return
        was_broken = self.current is not None and self.current.failure is not None
        self.promote(gen)
        if gen.verifies is not None:
            source, failure = gen.verifies
            self.counters["fast_path_wrong"] += 1
            # The shell narrows it, and says how with a FastPathNarrowed event (noted and logged there).
            self._do(ev.Distrust(source, f"the {source} failed ({failure.headline()}) where a fresh interpreter "
                                         f"serves the same code; serving the fresh one."))
        changed = bool(event.app) and (self.app or {}).get("import") != event.app.get("import")
        self.app = event.app or self.app
        self.counters["reloads"] += 1
        took = self._record(gen, ok=True)
        if gen.trigger == "startup" or changed:
            # What was found and why, once, and again whenever it changes.
            found = f" ({self.app.get('interface')}; {self.app.get('reason')})" if self.app else ""
            log.info("serving %s%s, started in %.3f s", self._app_name(), found, took)
        else:
            log.info("reloaded in %.3f s%s (%s)", took, ", app fixed" if was_broken else "", gen.trigger)

    def on_failed(self, event: ev.Failed) -> None:
        gen = self._phase(event.gen, "ready", event.at)
        if gen is None:
            return
        gen.failure = event.failure
        if event.held:
            self._verify(gen, event.failure, event.source or gen.source or "fork")
            return
        if gen.state != PENDING or self.stopping:
            return
        self.promote(gen)
        if event.app:
            self.app = event.app
        self.counters["failures"] += 1
        self._record(gen, ok=False)
        log.error("app broken after %s: %s; serving the error page (503) until a fix is saved", gen.trigger,
                  gen.failure.headline())
        log.debug("%s", gen.failure.traceback)
        self._do(ev.PrepareLayer())  # the fix is the next save: the layer leaves out the broken file (hot)

    def _verify(self, gen: Generation, failure: Failure, source: str) -> None:
        """A fast path's generation failed; it serves nothing and exits. The invariant: nothing is shown that a
        fresh interpreter importing the same tree would not show. So the same saved code is started in one
        (unless a newer save replaced it already), and whichever it does decides what is served."""
        if gen.state != PENDING or self.stopping:
            return
        self._to(gen, RETIRING)  # it exits by itself: not a crash
        gen.kill_at = self.ops.now() + self.policy.grace + self.policy.kill_margin_s
        self.counters["verified"] += 1
        log.debug("%s failed when made from the %s (%s); trying the same code in a fresh interpreter", gen,
                  source, failure.headline())
        phases = {name: gen.phases[name] for name in ("saved", "delivered", "applied") if name in gen.phases}
        self.start_app(gen.trigger, phases, procs=False, changes=gen.changes,
                       verifies=(source, failure))

    def on_served(self, event: ev.Served) -> None:
        gen = self._phase(event.gen, "served", event.at)
        if gen is not None:
            self._update_record(gen.id, "served", event.at)

    def on_exit(self, event: ev.Exited) -> None:
        gen = self.live.pop(event.gen, None)
        if gen is None:
            return
        was, gen.kill_at = gen.state, None
        self._to(gen, EXITED)
        self._update_replaced(gen.id, self.ops.now())
        was_pending = was == PENDING
        if was in (RETIRING, STOPPING) or self.stopping:
            return
        lived = self.ops.now() - gen.phases["ready"] if "ready" in gen.phases else 0.0
        self.counters["crashes"] += 1
        delay = self.restart_delay = self.backoff.crashed(lived)
        when = "now" if delay == 0 else f"in {delay:g} s"
        what = "the app process" if gen.kind == "app" else "the error responder"
        log.warning("%s (pid %s) %s; restarting %s", what, gen.pid, describe_exit(event.code),
                    when if delay == 0 else f"{when} (crash {self.backoff.crashes} in a row)")
        # The port says why while nothing serves the app, and when a save made the app die while loading
        # (like a failed import, that replaces the previous version).
        if gen.kind == "app" and (was_pending or (self.current is None and delay > 0)):
            during = " while loading" if was_pending else ""  # a pending generation never served
            self.show(Failure("crash", "WorkerExited", f"the app process {describe_exit(event.code)}{during}; "
                                                       f"restarting {when}"))
        if delay == 0:
            self.restart_after_crash()
        else:
            self.timers["restart"] = self.ops.now() + delay

    def restart_after_crash(self) -> None:
        self.counters["restarts"] += 1
        if self.environment is not None:
            # Nothing may be imported (start_app would start nothing): the environment's page comes back,
            # or the port would stay dark until the environment is fixed.
            self.show(self.environment)
            return
        self.start_app("restart after crash", procs=False)

    def _stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping")
        # Nothing may start once stopping: every armed timer goes, and every live generation is retired.
        self.timers.clear()
        self.unsettled.clear()
        self.half_done.clear()
        self.after_install = None
        self._do(ev.Serve(None))
        for gen in list(self.live.values()):
            self.retire(gen)

    # -- reporting ----------------------------------------------------------------------------------

    def _app_name(self) -> str:
        return (self.app or {}).get("import") or self.ops.app_label()

    def _record(self, gen: Generation, ok: bool) -> float:
        start = gen.phases["spawned"]
        took = gen.phases["ready"] - start
        base = gen.phases.get("saved") or gen.phases.get("delivered") or start
        self.recent.append({"gen": gen.id, "trigger": gen.trigger, "ok": ok, "seconds": round(took, 4),
                            "at": self.ops.wall(), "replaced": gen.replaced, "base": base,
                            "from": gen.source or ("warm process" if "forked" in gen.phases and not gen.fresh
                                                  else "new interpreter"),
                            "phases": {name: round(gen.phases[name] - base, 4) for name in PHASES
                                       if name in gen.phases}})
        return took

    def _update_record(self, gen_id: int, phase: str, at: float) -> None:
        for record in self.recent:
            if record["gen"] == gen_id and phase not in record["phases"]:
                record["phases"][phase] = round(at - record["base"], 4)

    def _update_replaced(self, old_id: int, at: float) -> None:
        for record in self.recent:
            if record["replaced"] == old_id and "old_gone" not in record["phases"]:
                record["phases"]["old_gone"] = round(at - record["base"], 4)
                # The last phase: the whole reload on one line (LOG_LEVEL=debug).
                log.debug("reload %d (%s, from %s) phases, s after the save: %s", record["gen"], record["trigger"],
                          record["from"], " ".join(f"{name} {value:.4f}" for name, value in record["phases"].items()))

    def state(self) -> str:
        if self.stopping:
            return "stopping"
        cur = self.current
        if cur is None or (cur.failure is not None and cur.failure.phase == "starting"):
            return "starting"
        if self.pending is not None:
            return "reloading"
        return "broken" if cur.failure is not None else "serving"

    def snapshot(self) -> dict:
        cur = self.current
        failure = cur.failure if cur is not None else None
        last = self.recent[-1] if self.recent else None
        return {
            "state": self.state(),
            "error": failure.headline() if failure else None,
            "failure": failure.to_dict() if failure else None,
            "app": self.app,
            "last_reload": ({k: v for k, v in last.items() if k not in ("base", "replaced")} if last else None),
            "reloads": [{k: v for k, v in r.items() if k not in ("base", "replaced")} for r in self.recent],
            "counters": dict(self.counters),
            "crashes": self.backoff.crashes,
            "restart_delay": self.restart_delay,
            "generation": cur.id if cur else None,
            "worker_pid": cur.pid if cur else None,
            "pending_pid": self.pending.pid if self.pending else None,
            "installing": self.installing,
            "dependencies_error": self.deps_error,
            "dependencies_warning": self.deps_warning,
            "environment_error": self.environment.message if self.environment else None,
            "fast_path": list(self.fast_path_notes),
        }

    # Each event the machine reacts to, and its handler.
    HANDLERS = {
        ev.Changes: on_changes,
        ev.Started: on_started,
        ev.Imported: on_imported,
        ev.Ready: on_ready,
        ev.Failed: on_failed,
        ev.Served: on_served,
        ev.Uses: on_uses,
        ev.Exited: on_exit,
        ev.Installed: on_installed,
        ev.StopRequested: on_stop_requested,
        ev.FastPathNarrowed: on_fast_path_narrowed,
    }
