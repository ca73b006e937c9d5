"""The configs that bring code in by copying instead of a bind mount, checked offline (no cluster can run
here): compose.yaml's develop.watch and .dockerignore skip what unstuck's watcher ignores; the Kubernetes
manifests pass the API schema and their probes ask `unstuck status` the right questions; the Tiltfile runs
under a Starlark interpreter with Tilt's functions recorded; skaffold.yaml uses only fields its apiVersion
documents. The tools themselves are exercised for real where they can run here: tests/integration/test_sync.py."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import starlark
import yaml
from docker.utils.build import PatternMatcher
from watchfiles import Change

from repo import REPO
from sync_examples import KEPT, NOISE
from unstuck import cli, state
from unstuck.config import DEFAULT_IGNORE
from unstuck.watching.watch_filter import WatchFilter

# -- what is never copied -------------------------------------------------------------------------------


def watcher_ignores(rel: str) -> bool:
    """Ignored by the watcher's ignore rules (every name is watched here, so the include list plays no part)."""
    watch_filter = WatchFilter([Path("/workspace")], ("*",), DEFAULT_IGNORE)
    return not watch_filter(Change.modified, f"/workspace/app/{rel}")


def dockerignore() -> PatternMatcher:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return PatternMatcher([line for line in lines if line.strip() and not line.startswith("#")])


def compose_service(name: str = "compose.yaml") -> dict:
    class ComposeLoader(yaml.SafeLoader):
        pass

    # compose's merge tag: `!reset []` empties what the files before it set.
    ComposeLoader.add_constructor("!reset", lambda loader, node: ("!reset", loader.construct_sequence(node)))
    return yaml.load((REPO / name).read_text(), Loader=ComposeLoader)["services"]["app"]


def compose_sync_ignores() -> PatternMatcher:
    rules = [r for r in compose_service()["develop"]["watch"] if r["action"] == "sync"]
    return PatternMatcher(rules[0]["ignore"])


# docker-py's PatternMatcher follows the engine's rules except for `**/` at the very top of the tree, so the
# examples sit one directory down; the real engine and Compose are checked at the top in test_sync.py.
@pytest.mark.parametrize("rel", NOISE)
def test_sync_configs_skip_what_the_watcher_ignores(rel):
    assert watcher_ignores(rel), f"{rel} is not ignored by the watcher: not an example of noise"
    assert dockerignore().matches(f"app/{rel}"), f".dockerignore lets app/{rel} into the image and into syncs"
    assert compose_sync_ignores().matches(f"pkg/{rel}"), f"compose.yaml's develop.watch would copy {rel}"


@pytest.mark.parametrize("rel", KEPT)
def test_sync_configs_copy_code_dependencies_and_data(rel):
    assert not dockerignore().matches(f"app/{rel}")
    assert not compose_sync_ignores().matches(rel) and not compose_sync_ignores().matches(f"pkg/{rel}")


# -- Compose Watch --------------------------------------------------------------------------------------


def test_compose_watch_copies_the_app_and_rebuilds_only_for_the_image():
    service = compose_service()
    rules = {(rule["path"], rule["action"]): rule for rule in service["develop"]["watch"]}
    assert rules[("./app", "sync")]["target"] == "/workspace/app"
    assert {path for path, action in rules if action == "rebuild"} == {"./Dockerfile", "./entrypoint"}
    # unstuck reloads synced files itself; a restart would drop the warm process and the error page.
    assert not [action for _, action in rules if "restart" in action or "exec" in action]
    # The bind mount of the same directory (compose skips a sync rule under a bind mount) and its removal.
    assert "./app:/workspace/app" in service["volumes"]
    assert compose_service("compose.sync.yaml") == {"volumes": ("!reset", [])}


# -- Kubernetes -----------------------------------------------------------------------------------------

MANIFEST = REPO / "deploy" / "kubernetes.yaml"


def manifests() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


@pytest.mark.parametrize("version", ["1.25.0", kubernetes_validate.latest_version()])
def test_manifests_pass_the_kubernetes_schema_strictly(version):
    for kind, doc in manifests().items():
        kubernetes_validate.validate(doc, version, strict=True)  # raises with the path of the bad field


def image_uid() -> int:
    dockerfile = (REPO / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)[-1]  # the last one is what the container runs as
    uid = re.search(r"^ARG UNSTUCK_UID=(\d+)", dockerfile, re.M).group(1)
    return int(uid if user == "${UNSTUCK_UID}" else user)


def container() -> dict:
    return manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def test_pod_runs_as_the_images_user_and_is_reached_through_the_service():
    deployment, service = manifests()["Deployment"], manifests()["Service"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == image_uid() == 1000
    assert pod["securityContext"]["runAsNonRoot"] is True
    # A Service named unstuck would otherwise put UNSTUCK_PORT=tcp://... into the container's environment.
    assert pod["enableServiceLinks"] is False
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports[service["spec"]["ports"][0]["targetPort"]] == 8000 == service["spec"]["ports"][0]["port"]


@pytest.fixture
def reload_server(tmp_path, monkeypatch):
    """publish(state, alive=True): the state file the reload server writes, for the probes to read."""
    monkeypatch.setenv("UNSTUCK_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("UNSTUCK_RELOADER", raising=False)

    def publish(server_state: str, alive: bool = True) -> None:
        state.write(tmp_path / "state.json", state=server_state, app_module="app.main:app", port=8000)
        if not alive:
            exited = subprocess.Popen([sys.executable, "-c", "pass"])
            exited.wait()
            data = state.read(tmp_path / "state.json")
            state.write(tmp_path / "state.json", **{**data, "pid": exited.pid})

    return publish


def probe(name: str) -> int:
    """Run a probe's command the way the kubelet would, against the published state."""
    command = container()[name]["exec"]["command"]
    assert command[:2] == ["unstuck", "status"], command
    return cli.main(command[1:])


@pytest.mark.parametrize("server_state, live, ready", [
    ("starting", 0, 1),
    ("serving", 0, 0),
    ("reloading", 0, 0),
    ("broken", 0, 0),  # the 503 page shows the error: never restarted, still reachable
])
def test_probes_restart_only_a_dead_server_and_route_to_the_error_page(reload_server, server_state, live, ready):
    reload_server(server_state)
    assert (probe("startupProbe"), probe("livenessProbe"), probe("readinessProbe")) == (live, live, ready)


def test_probes_fail_when_the_reload_server_is_gone(reload_server):
    reload_server("serving", alive=False)
    assert (probe("startupProbe"), probe("livenessProbe"), probe("readinessProbe")) == (1, 1, 1)


# -- Tilt -----------------------------------------------------------------------------------------------

# Tilt's functions the Tiltfile may call (https://docs.tilt.dev/api.html); calls are recorded, and a step
# function returns a dict naming itself so live_update's list can be inspected.
TILT_FUNCTIONS = ["docker_build", "k8s_yaml", "k8s_resource", "sync", "fall_back_on", "run", "restart_container"]


def run_tiltfile(env: dict[str, str] | None = None) -> list[tuple[str, list, dict]]:
    """Evaluate the Tiltfile with starlark-rust (Tilt runs the Go implementation of the same language)."""
    calls: list[tuple[str, list, dict]] = []

    def recorder(name: str):
        def call(*args, **kwargs):
            calls.append((name, list(args), kwargs))
            return {"step": name, "args": list(args)}
        return call

    module = starlark.Module()
    for name in TILT_FUNCTIONS:
        module.add_callable(name, recorder(name))
    module.add_callable("_getenv", lambda key, default=None: (env or {}).get(key, default))
    dialect = starlark.Dialect.extended()
    globals_ = starlark.Globals.extended_by([starlark.LibraryExtension.StructType])
    starlark.eval(module, starlark.parse("tilt-os", "os = struct(getenv = _getenv)\n", dialect), globals_)
    starlark.eval(module, starlark.parse("Tiltfile", (REPO / "Tiltfile").read_text(), dialect), globals_)
    return calls


def test_tiltfile_syncs_the_app_and_never_restarts():
    calls = run_tiltfile()
    [(_, build_args, build)] = [c for c in calls if c[0] == "docker_build"]
    assert build_args == [container()["image"], "."]
    steps = build["live_update"]
    names = [step["step"] for step in steps]
    assert {"sync", "fall_back_on"} >= set(names), names  # no run() or restart_container(): unstuck reloads
    assert not [c for c in calls if c[0] in ("run", "restart_container")]
    # Tilt requires fall_back_on steps before any sync.
    assert names == sorted(names, key=lambda n: n != "fall_back_on"), names
    assert {"step": "sync", "args": ["./app", "/workspace/app"]} in steps
    fall_back = [arg for step in steps if step["step"] == "fall_back_on" for arg in step["args"][0]]
    assert {"Dockerfile", "entrypoint"} <= set(fall_back)
    [(_, [manifest], _)] = [c for c in calls if c[0] == "k8s_yaml"]
    assert (REPO / manifest).resolve() == MANIFEST
    [(_, [workload], resource)] = [c for c in calls if c[0] == "k8s_resource"]
    assert workload == manifests()["Deployment"]["metadata"]["name"]
    assert "8000:8000" in resource["port_forwards"]


def test_tiltfile_builds_from_the_same_base_image_as_compose():
    default_base = re.search(r"^ARG BASE_IMAGE=(\S+)", (REPO / "Dockerfile").read_text(), re.M).group(1)
    for env, expected in [({}, default_base), ({"BASE_IMAGE": "my-base"}, "my-base")]:
        [(_, _, build)] = [c for c in run_tiltfile(env) if c[0] == "docker_build"]
        assert build["build_args"] == {"BASE_IMAGE": expected}


# -- Skaffold -------------------------------------------------------------------------------------------

# The fields skaffold/v4beta11 documents for the sections used here, from Skaffold's schema source
# (pkg/skaffold/schema/v4beta11/config.go): an unknown or misspelt key is rejected by Skaffold at load.
SKAFFOLD_V4BETA11 = {
    "": {"apiVersion", "kind", "metadata", "requires", "build", "test", "manifests", "deploy", "portForward",
         "resourceSelector", "verify", "customActions", "profiles"},
    "metadata": {"name", "labels", "annotations"},
    "build": {"hooks", "artifacts", "insecureRegistries", "tagPolicy", "platforms", "local", "googleCloudBuild",
              "cluster"},
    "build.tagPolicy": {"gitCommit", "sha256", "envTemplate", "dateTime", "customTemplate", "inputDigest"},
    "build.artifacts[]": {"image", "context", "sync", "requires", "hooks", "platforms", "runtimeType", "docker",
                          "bazel", "ko", "jib", "kaniko", "buildpacks", "custom"},
    "build.artifacts[].docker": {"dockerfile", "target", "buildArgs", "network", "addHost", "cacheFrom",
                                 "cliFlags", "pullParent", "noCache", "cacheTo", "secrets", "ssh"},
    "build.artifacts[].sync": {"manual", "infer", "auto", "hooks"},
    "build.artifacts[].sync.manual[]": {"src", "dest", "strip"},
    "manifests": {"rawYaml", "remoteManifests", "kustomize", "helm", "kpt", "hooks", "transform", "validate",
                  "output"},
    "deploy": {"docker", "helm", "kpt", "kubectl", "cloudrun", "statusCheck", "statusCheckDeadlineSeconds",
               "tolerateFailuresUntilDeadline", "kubeContext", "logs"},
    "deploy.kubectl": {"flags", "remoteManifests", "defaultNamespace", "hooks"},
    "portForward[]": {"resourceType", "resourceName", "namespace", "port", "address", "localPort"},
}
SKAFFOLD_REQUIRED = {"": {"apiVersion", "kind"}, "build.artifacts[]": {"image"},
                     "build.artifacts[].sync.manual[]": {"src", "dest"}}


def skaffold() -> dict:
    return yaml.safe_load((REPO / "skaffold.yaml").read_text())


def sections(node, path: str = ""):
    """(path, mapping) for each mapping whose fields the schema above lists."""
    if isinstance(node, dict):
        if path in SKAFFOLD_V4BETA11:
            yield path, node
        for key, value in node.items():
            yield from sections(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for item in node:
            yield from sections(item, f"{path}[]")


def test_skaffold_config_uses_only_documented_fields():
    config = skaffold()
    assert (config["apiVersion"], config["kind"]) == ("skaffold/v4beta11", "Config")
    seen = set()
    for path, mapping in sections(config):
        seen.add(path)
        assert set(mapping) <= SKAFFOLD_V4BETA11[path], f"{path}: {set(mapping) - SKAFFOLD_V4BETA11[path]}"
        assert SKAFFOLD_REQUIRED.get(path, set()) <= set(mapping), path
    assert {"build.artifacts[].sync.manual[]", "manifests", "portForward[]"} <= seen


def skaffold_destination(rel: str) -> str | None:
    """Where Skaffold's manual sync puts a changed file: dest + the path without `strip` (Skaffold's file
    sync docs), or None when no rule matches (then Skaffold rebuilds the image)."""
    [artifact] = skaffold()["build"]["artifacts"]
    for rule in artifact["sync"]["manual"]:
        if fnmatch.fnmatchcase(rel, rule["src"]):  # `**` and `*` both cross `/` here, as in Skaffold's globs
            return f"{rule['dest'].rstrip('/')}/{rel.removeprefix(rule.get('strip', ''))}"
    return None


def test_skaffold_syncs_the_app_and_rebuilds_for_the_image():
    [artifact] = skaffold()["build"]["artifacts"]
    assert artifact["image"] == container()["image"]
    assert skaffold_destination("app/main.py") == "/workspace/app/main.py"
    assert skaffold_destination("app/pkg/models.py") == "/workspace/app/pkg/models.py"
    assert skaffold_destination("app/requirements.txt") == "/workspace/app/requirements.txt"
    assert skaffold_destination("Dockerfile") is None and skaffold_destination("entrypoint/unstuck/cli.py") is None
    config = skaffold()
    assert [(REPO / p).resolve() for p in config["manifests"]["rawYaml"]] == [MANIFEST]
    [forward] = config["portForward"]
    assert (forward["resourceType"], forward["resourceName"], forward["port"]) == (
        "service", manifests()["Service"]["metadata"]["name"], 8000)
    assert forward["address"] == "127.0.0.1"
