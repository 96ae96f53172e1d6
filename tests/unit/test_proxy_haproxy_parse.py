"""Reading HAProxy 2.6's runtime answers (captured from a real one) and planning the commands."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from tminus.kinds.proxy_drivers.base import ProxyError, RoutingState
from tminus.kinds.proxy_drivers.haproxy import Driver
from tminus.kinds.proxy_drivers.haproxy_api import Runtime, parse_map, parse_servers_state, parse_stat

HEADER = ("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
          "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
          "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port "
          "srv_check_addr srv_agent_addr srv_agent_port")


def state_text(*rows: tuple[str, str, int, int]) -> str:
    """`show servers state` with (backend, server, admin_state, uweight) rows."""
    lines = [f"3 {be} {i} {srv} 127.0.0.1 2 {admin} {weight} {weight} 1 1 0 2 0 0 0 0 - 1800{i} - 0 0 - - 0"
             for i, (be, srv, admin, weight) in enumerate(rows, 1)]
    return "1\n" + HEADER + "\n" + "\n".join(lines) + "\n\n"


STAT = ("# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,weight\n"
        "web,FRONTEND,,,3,5,9986,10,OPEN,\n"
        "app,blue1,0,0,2,4,,7,UP,100\n"
        "app,blue2,0,0,1,1,,3,UP,100\n"
        "app,green1,0,0,0,0,,0,DRAIN,0\n"
        "app,BACKEND,0,0,3,5,999,10,UP,200\n"
        "app_preview,blue1,0,0,1,1,,1,UP,1\n\n")


@dataclass
class Spec:
    socket: str = "admin.sock"
    backend: str = "app"
    servers: dict[str, str | list[str]] = field(default_factory=lambda: {"blue": ["blue1", "blue2"],
                                                                         "green": "green1"})
    preview_backend: str | None = "app_preview"
    maintenance_map: str | None = "/etc/haproxy/tminus.map"


def driver(**fields: object) -> Driver:
    return Driver(Spec(**fields), Path("/srv/release"))  # type: ignore[arg-type]


ROWS = parse_servers_state(state_text(("app", "blue1", 0, 100), ("app", "blue2", 0, 100), ("app", "green1", 8, 40),
                                      ("app_preview", "blue1", 5, 1), ("app_preview", "blue2", 5, 1),
                                      ("app_preview", "green1", 4, 1)))


def test_servers_state_rows_and_admin_bits() -> None:
    assert ROWS[("app", "blue1")].effective_weight == 100
    green = ROWS[("app", "green1")]
    assert (green.drain, green.maint, green.uweight, green.effective_weight) == (True, False, 40, 0)
    disabled = ROWS[("app_preview", "blue1")]  # `disabled` in the config: forced + config maintenance
    assert (disabled.maint, disabled.effective_weight) == (True, 0)
    readied = ROWS[("app_preview", "green1")]  # made ready since: only the config bit remains
    assert (readied.maint, readied.drain, readied.effective_weight) == (False, False, 1)
    assert green.describe() == "app/green1 drain weight 40"


@pytest.mark.parametrize("answer", ["Unknown command, but maybe one of the following ones...\n\n", "", "1\n\n",
                                    "Permission denied\n\n"])
def test_servers_state_refuses_what_it_cannot_read(answer: str) -> None:
    with pytest.raises(ProxyError, match="unexpected answer to 'show servers state'"):
        parse_servers_state(answer)


def test_servers_state_bad_line_names_it() -> None:
    with pytest.raises(ProxyError, match="cannot read 'show servers state' line"):
        parse_servers_state("1\n" + HEADER + "\n3 app 1 blue1 127.0.0.1 2 x 100\n")


def test_stat_csv_and_its_refusal() -> None:
    rows = parse_stat(STAT)
    assert [(r["pxname"], r["svname"], r["scur"]) for r in rows][1:3] == [("app", "blue1", "2"), ("app", "blue2", "1")]
    with pytest.raises(ProxyError, match="unexpected answer to 'show stat'"):
        parse_stat("No such backend.\n\n")


def test_map_entries_first_wins_and_refusal_says_how_to_name_it() -> None:
    assert parse_map("0x55a565aa60c0 maintenance on\n0x55a565aa60d0 maintenance off\n0x1 page a b\n\n") == {
        "maintenance": "on", "page": "a b"}
    assert parse_map("\n") == {}
    with pytest.raises(ProxyError, match=r"cannot read the map m: HAProxy answered 'Unknown map identifier.*exactly"):
        parse_map("Unknown map identifier. Please use #<id> or <file>.\n\n", "m")


def test_state_spreads_an_upstream_weight_over_its_servers() -> None:
    drv = driver()
    assert drv.scale == 2  # lcm(2 blue servers, 1 green)
    state = drv._state(ROWS, {"maintenance": "off"})
    assert state == RoutingState({"blue": 100, "green": 0}, maintenance=False, preview="green")


def test_plan_gains_before_losses_and_scales_weights() -> None:
    drv = driver()
    commands = drv._plan(RoutingState({"blue": 90, "green": 10}), ROWS, {"maintenance": "off"})
    # green (2 blue servers to 1: its one server carries 10 * 2) first, out of drain after its weight
    assert commands == ["set weight app/green1 20", "set server app/green1 state ready",
                        "set weight app/blue1 90", "set weight app/blue2 90",
                        "set server app_preview/green1 state maint"]


def test_plan_maintenance_on_first_off_last_and_add_when_missing() -> None:
    drv = driver()
    on = drv._plan(RoutingState({"blue": 0, "green": 100}, maintenance=True, preview="green"), ROWS, {})
    assert on[0] == "add map /etc/haproxy/tminus.map maintenance on"
    assert on[1:3] == ["set weight app/green1 200", "set server app/green1 state ready"]
    assert on[3:] == ["set server app/blue1 state drain", "set server app/blue2 state drain"]
    off = drv._plan(RoutingState({"blue": 0, "green": 100}), ROWS, {"maintenance": "on"})
    assert off[-1] == "set map /etc/haproxy/tminus.map maintenance off"


def test_plan_nothing_when_already_there() -> None:
    drv = driver()
    assert drv._plan(RoutingState({"blue": 100, "green": 0}, preview="green"), ROWS, {"maintenance": "off"}) == []


@pytest.mark.parametrize(("state", "message"), [
    (RoutingState({"red": 1}), "no upstream red in `servers`"),
    (RoutingState({"blue": 100}, preview="red"), "no upstream red"),
    (RoutingState({"blue": 300, "green": 0}), r"weight 300 for 'blue' is out of range.*0\.\.256"),
    (RoutingState({"blue": 0, "green": 129}), r"becomes 258 per server"),
    (RoutingState({"blue": -1}), "out of range"),
])
def test_plan_refuses_states_haproxy_cannot_take(state: RoutingState, message: str) -> None:
    with pytest.raises(ProxyError, match=message):
        driver()._plan(state, ROWS, {})


def test_maintenance_and_preview_need_their_config() -> None:
    with pytest.raises(ProxyError, match="maintenance needs `maintenance_map`"):
        driver(maintenance_map=None)._plan(RoutingState({"blue": 100}, maintenance=True), ROWS, {})
    rows = {k: v for k, v in ROWS.items() if k[0] == "app"}
    with pytest.raises(ProxyError, match="preview needs `preview_backend`"):
        driver(preview_backend=None)._plan(RoutingState({"blue": 100}, preview="green"), rows, {})


@pytest.mark.parametrize("fields", [{"servers": {"blue": "b1;shutdown sessions"}}, {"backend": "app app"},
                                    {"servers": {"blue": []}}, {"servers": {}}, {"maintenance_map": "a b.map"},
                                    {"preview_backend": "p\nq"}])
def test_names_the_cli_would_split_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ProxyError, match="haproxy: "):
        driver(**fields)


def test_socket_addresses(tmp_path: Path) -> None:
    assert Runtime("run/admin.sock", tmp_path, 1).display == str(tmp_path / "run/admin.sock")
    assert Runtime("/run/haproxy/admin.sock", tmp_path, 1).display == "/run/haproxy/admin.sock"
    tcp = Runtime("ipv4@127.0.0.1:9999", tmp_path, 1)
    assert (tcp._family, tcp._tcp) == (socket.AF_INET, ("127.0.0.1", 9999))
    assert Runtime("ipv6@[::1]:9999", tmp_path, 1)._tcp == ("::1", 9999)


@pytest.mark.parametrize(("fields", "message"), [({"socket": None}, "`socket` is missing"),
                                                 ({"backend": ""}, "`backend` is missing"),
                                                 ({"servers": None}, "`servers` is empty")])
def test_the_fields_one_model_leaves_optional_are_required_here(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ProxyError, match=message):
        driver(**fields)


def test_only_on_is_maintenance_as_the_acl_matches() -> None:
    drv = driver()
    assert drv._state(ROWS, {"maintenance": "on"}).maintenance is True
    assert drv._state(ROWS, {"maintenance": "1"}).maintenance is False
    assert drv._state(ROWS, {}).maintenance is False


def test_an_upstream_whose_servers_are_all_down_gets_no_traffic() -> None:
    drv = driver()
    down = {**ROWS, ("app", "green1"): replace(ROWS[("app", "green1")], op_state=0)}
    with pytest.raises(ProxyError, match=r"upstream 'green' has no server up: app/green1 DOWN by the health check"):
        drv._plan(RoutingState({"blue": 0, "green": 100}), down, {})
    assert drv._plan(RoutingState({"blue": 100, "green": 0}), down, {"maintenance": "off"}) == [
        "set server app_preview/green1 state maint"]  # nothing routed to green: allowed
    one_up = {**down, ("app", "blue2"): replace(ROWS[("app", "blue2")], op_state=0)}
    assert drv._plan(RoutingState({"blue": 50, "green": 0}), one_up, {"maintenance": "off"})[0].startswith("set weight")
    maint = {**ROWS, ("app", "green1"): replace(ROWS[("app", "green1")], op_state=0, admin_state=1)}
    assert not maint[("app", "green1")].down  # in maintenance, checks stop: not known to be down
