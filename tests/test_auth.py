"""Identity, roles, the guard every page write goes through, the audit trail and the daily spend cap.

Databases are real (SQLite and PostgreSQL: every ``open_db`` test runs on both); Imagga is the
loopback stand-in; the cluster test runs on the suite's LocalCluster.
"""

from __future__ import annotations

import pickle
import socket
import threading
from dataclasses import replace

import pytest
import sqlalchemy as sa

from tagging import auth
from tagging.auth import ADMIN, ANALYST, VIEWER, GuardedStore, Identity
from tagging.backends import IMAGGA, ImaggaBackend, TagRequest, backend_id, paid_call
from tagging.batch import CACHED, OK, SKIPPED, PerThreadImagga, run_batch, run_on_cluster
from tagging.errors import (
    BackendTimeoutError,
    BackendUnreachableError,
    PermissionDeniedError,
    ServerError,
    SpendCapError,
    StoreUnavailableError,
    TaggingError,
)
from tagging.images import load_image
from tagging.imagga import ImaggaClient
from tagging.models import Tag
from tagging.store import MIGRATIONS, FeedbackItem, Store, deliver_pending, queue_feedback
from tests.imagga_standin import ImaggaStandin, serve
from tests.test_cluster import CREDENTIALS, _files, _imagga, _png

ITEMS = [FeedbackItem("cat", 91.0, True), FeedbackItem("dog", 12.5, False)]
ADA, BOB, VIC = (Identity("ada@example.com", ADMIN, auth.OIDC), Identity("bob@example.com", ANALYST, auth.OIDC),
                 Identity("vic@example.com", VIEWER, auth.OIDC))

# Each role's rights, written out by hand (the list), not read from tagging.auth.
RIGHTS = {
    VIEWER: {"export"},
    ANALYST: {"export", "save", "run_batch", "tag_imagga"},
    ADMIN: {"export", "save", "run_batch", "tag_imagga", "delete", "apply_default", "override", "send_feedback",
            "set_caps", "set_roles"},
}


def _save(store, key: str = "img", **kw):
    args = dict(image_key=key, filename="cat.jpg", source="Upload", backend="embedded", language="en",
                threshold=60.0, min_tags=3, items=ITEMS)
    args.update(kw)
    return store.save_feedback(**args)


@pytest.mark.parametrize("role", [VIEWER, ANALYST, ADMIN])
def test_each_role_may_take_exactly_its_actions_and_a_refusal_names_the_role_needed(role):
    who = Identity("someone@example.com", role, auth.OIDC)
    assert {a for a in auth.ACTIONS if auth.can(who, a)} == RIGHTS[role]
    for action in set(auth.ACTIONS) - RIGHTS[role]:
        reason = auth.refusal(who, action)
        assert reason and f"your role is {role}" in reason and auth.least_role(action) in reason
        with pytest.raises(PermissionDeniedError):
            auth.require(who, action)


def test_a_role_comes_from_the_bootstrap_admins_then_the_claim_then_the_table_then_the_default():
    assert auth.resolve_role("Ada@Example.com", claim="viewer", admins=["ada@example.com"]) == ADMIN
    assert auth.resolve_role("b", claim=["staff", "analyst"], table_role=ADMIN) == ANALYST
    assert auth.resolve_role("b", claim="admin,analyst") == ADMIN
    assert auth.resolve_role("b", claim=["staff"], table_role=ADMIN) == ADMIN  # no role in the claim: the table's
    assert auth.resolve_role("b") == VIEWER
    assert auth.resolve_role("b", default=ANALYST) == ANALYST
    with pytest.raises(ValueError):
        Identity("x", "owner")


def test_every_store_method_is_either_a_read_or_checked_by_the_guard():
    from tagging.auth._guard import READS

    unclassified = {name for name in dir(Store) if not name.startswith("_")} - READS - set(vars(GuardedStore))
    # raw access and maintenance (copy-library and bench rebuild the totals): never through the guard
    assert unclassified == {"close", "migrate", "reading", "rebuild_totals", "writing"}


# --- the guard, on SQLite and PostgreSQL ---------------------------------------------------------
def test_a_viewer_is_refused_every_write_before_the_database_is_touched(open_db):
    store = open_db()
    _save(store, "kept", saved_by="ada@example.com")
    guard = GuardedStore(store, VIC)
    writes = [
        lambda: _save(guard),
        lambda: guard.delete_image("kept"),
        lambda: guard.delete_verdict_set("kept", "embedded", "en"),
        lambda: guard.set_setting("default_threshold", 10),
        lambda: guard.set_tag_override("cat", 5.0),
        lambda: guard.enqueue(image_key="kept", backend=IMAGGA, payload={}),
        lambda: guard.set_role("vic@example.com", ADMIN),
        lambda: guard.set_cap("vic@example.com", 10_000),
        lambda: guard.meter("unused"),
        lambda: guard.start_batch("embedded", 3),
        lambda: guard.claim_next(IMAGGA, "me"),
    ]
    for write in writes:
        with pytest.raises(PermissionDeniedError):
            write()
    assert store.counts() == (1, 2) and store.get_setting("default_threshold") is None
    assert store.tag_overrides() == {} and store.pending() == [] and auth.table_role(store, "vic@example.com") is None
    # reads pass through; raw access that would skip the checks is not handed out
    assert guard.counts() == (1, 2) and [e.image_key for e in guard.library_entries()] == ["kept"]
    for name in ("engine", "writing", "reading", "migrate", "_write"):
        with pytest.raises(AttributeError):
            getattr(guard, name)
    guard.record_export("library CSV", 1)  # a viewer exports
    assert [(e.actor, e.action, e.detail) for e in auth.audit_entries(store)] == [
        ("vic@example.com", "export", {"what": "library CSV", "rows": 1})]


def test_an_analyst_saves_signed_by_their_identity_and_is_told_whose_verdict_they_replaced(open_db):
    store = open_db()
    admin, analyst = GuardedStore(store, ADA), GuardedStore(store, BOB)
    _save(admin, saved_by="forged name")  # whatever the caller passes, the identity signs
    assert store.verdict_set("img", "embedded", "en").saved_by == "ada@example.com"
    result = _save(analyst, saved_by="ada@example.com")
    assert result.replaced_other and result.previous_saved_by == "ada@example.com"
    assert store.verdict_set("img", "embedded", "en").saved_by == "bob@example.com"
    for refused in (lambda: analyst.delete_image("img"), lambda: analyst.set_setting("default_threshold", 5),
                    lambda: analyst.set_tag_override("cat", 5.0), lambda: analyst.set_role("bob@example.com", ADMIN),
                    lambda: analyst.set_cap("bob@example.com", None)):
        with pytest.raises(PermissionDeniedError, match="admin role"):
            refused()
    assert store.counts() == (1, 2) and store.tag_overrides() == {}


def test_an_admin_deletes_applies_defaults_and_overrides_and_each_is_in_the_trail(open_db):
    store = open_db()
    admin = GuardedStore(store, ADA)
    _save(admin)
    admin.set_setting("default_threshold", 42)
    admin.set_tag_override("cat", 70.0)
    assert admin.delete_image("img") == 2
    admin.set_role("bob@example.com", ANALYST)
    admin.set_cap("bob@example.com", 5)
    admin.set_cap(None, 100)
    trail = [(e.actor, e.action, e.detail) for e in reversed(auth.audit_entries(store))]
    assert trail == [
        ("ada@example.com", "apply default", {"setting": "default_threshold", "value": 42}),
        ("ada@example.com", "override change", {"tag": "cat", "threshold": 70.0}),
        ("ada@example.com", "delete", {"image": "img", "verdicts": 2}),
        ("ada@example.com", "role change", {"identity": "bob@example.com", "from": None, "to": "analyst"}),
        ("ada@example.com", "cap change", {"identity": "bob@example.com", "from": None, "to": 5}),
        ("ada@example.com", "cap change", {"identity": "everyone (default)", "to": 100}),
    ]
    assert store.counts() == (0, 0) and store.get_setting("default_threshold") == 42
    assert auth.table_role(store, "bob@example.com") == ANALYST
    assert auth.cap_of(store, "bob@example.com") == 5 and auth.cap_of(store, "carol@example.com") == 100
    assert [e.action for e in auth.audit_entries(store, action="delete")] == ["delete"]
    assert auth.audit_entries(store, actor="bob@example.com") == []


def test_the_trail_drops_secret_keys_and_its_csv_defuses_spreadsheet_formulas(open_db):
    store = open_db()
    auth.record(store, "=cmd|' /C calc'!A0", "export", {"what": "x", "client_secret": "s3cr3t", "api_key": "k"})
    data = auth.audit_csv(auth.audit_entries(store)).decode()
    assert "s3cr3t" not in data and "api_key" not in data
    assert data.splitlines()[0] == "at,actor,action,calls,detail"
    assert ",'=cmd|' /C calc'!A0,export," in data


def test_analysts_queue_feedback_signed_and_only_an_admin_sends_it(open_db):
    store = open_db()
    analyst = GuardedStore(store, BOB)
    _save(analyst, backend=IMAGGA)
    queue_feedback(analyst, backend=IMAGGA, image_key="img", tags=[Tag("cat", 91.0)], accepted={"cat"},
                   language="en")
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT queued_by FROM outbox")).scalar_one() == "bob@example.com"
    with serve(ImaggaStandin()) as (standin, url):
        client = ImaggaClient(CREDENTIALS, base_url=url)
        with pytest.raises(PermissionDeniedError):
            deliver_pending(analyst, client, IMAGGA)
        assert standin.count("POST") == 0 and len(store.pending()) == 1
        report = deliver_pending(GuardedStore(store, ADA), client, IMAGGA)
        assert report.sent == 1 and store.pending() == []


# --- spend ---------------------------------------------------------------------------------------
def test_the_daily_cap_is_per_identity_and_two_servers_charging_at_once_never_exceed_it(open_db):
    one, two = open_db(), open_db()  # two servers on one database
    GuardedStore(one, ADA).set_cap(None, 30)
    GuardedStore(one, ADA).set_cap("ada@example.com", 2)
    errors: list[Exception] = []

    def spend(store: Store) -> None:
        for _ in range(20):
            try:
                auth.charge(store, "bob@example.com")
            except SpendCapError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=spend, args=(s,)) for s in (one, two, one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert auth.spent_today(one, "bob@example.com") == 30 and len(errors) == 50
    assert "30 paid Imagga calls" in str(errors[0]) and "midnight UTC" in str(errors[0])
    assert auth.charge(two, "ada@example.com") == 1 and auth.charge(two, "ada@example.com") == 2
    with pytest.raises(SpendCapError):
        auth.charge(one, "ada@example.com")
    assert auth.spent_today(one, "carol@example.com") == 0 and auth.charge(one, "carol@example.com", 30) == 30


def test_a_metered_imagga_backend_sends_nothing_once_the_cap_is_reached(tmp_path):
    target = str(tmp_path / "t.db")
    store = Store(target)
    GuardedStore(store, ADA).set_cap("bob@example.com", 2)
    meter = GuardedStore(store, BOB).meter(target, password="pg-password")
    meter = pickle.loads(pickle.dumps(meter))  # as Dask ships it
    assert "pg-password" not in repr(meter)
    image = load_image(_png(1), "a.png")
    with serve(ImaggaStandin()) as (standin, url):
        backend = ImaggaBackend(ImaggaClient(CREDENTIALS, base_url=url), meter=meter)
        backend.tag_image(image, TagRequest())
        backend.tag_url("https://example.com/a.jpg", TagRequest())
        with pytest.raises(SpendCapError):
            backend.tag_image(image, TagRequest())
        assert standin.count("POST", "/v2/tags") + standin.count("GET", "/v2/tags") == 2


@pytest.mark.parametrize(("mode", "options", "given_back"), [
    ("server_error", {"status": 503}, True),
    ("rate_limit", {"retry_after": 1}, True),
    ("auth", {}, True),
    ("api_error", {"text": "unsupported image"}, True),
    ("no_result", {}, False),  # a 200 without a result: Imagga may have processed (and billed) it
    ("html", {}, False),
])
def test_a_call_imagga_answered_with_an_error_is_given_back_and_one_it_may_have_processed_is_not(
        tmp_path, mode, options, given_back):
    target = str(tmp_path / "t.db")
    store = Store(target)
    GuardedStore(store, ADA).set_cap("bob@example.com", 2)
    image = load_image(_png(1), "a.png")
    with serve(ImaggaStandin()) as (standin, url):
        backend = ImaggaBackend(ImaggaClient(CREDENTIALS, base_url=url, retries=0),
                                meter=GuardedStore(store, BOB).meter(target))
        standin.fail(mode, times=1, **options)
        with pytest.raises(TaggingError):
            backend.tag_image(image, TagRequest())
        assert auth.spent_today(store, "bob@example.com") == (0 if given_back else 1)
        backend.tag_image(image, TagRequest())  # the next one is answered, and charged
        assert auth.spent_today(store, "bob@example.com") == (1 if given_back else 2)
        assert standin.count("POST", "/v2/tags") == 2


def test_a_timeout_stays_charged_and_an_unreachable_imagga_costs_nothing(tmp_path):
    target = str(tmp_path / "t.db")
    store = Store(target)
    GuardedStore(store, ADA).set_cap("bob@example.com", 2)
    meter = GuardedStore(store, BOB).meter(target)
    image = load_image(_png(1), "a.png")
    with socket.socket() as sock:  # a port nobody listens on: the network is down
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}/v2"
    offline = ImaggaBackend(ImaggaClient(CREDENTIALS, base_url=down, retries=0), meter=meter)
    for _ in range(5):  # more attempts than the cap allows, none of them reached Imagga
        with pytest.raises(BackendUnreachableError):
            offline.tag_url("https://example.com/a.jpg", TagRequest())
    assert auth.spent_today(store, "bob@example.com") == 0
    gate = threading.Event()
    with serve(ImaggaStandin()) as (standin, url):
        slow = ImaggaBackend(ImaggaClient(CREDENTIALS, base_url=url, retries=0, upload_read_timeout=0.2),
                             meter=meter)
        standin.fail("slow", times=1, delay=10, gate=gate)
        try:
            with pytest.raises(BackendTimeoutError):
                slow.tag_image(image, TagRequest())
        finally:
            gate.set()
        assert auth.spent_today(store, "bob@example.com") == 1  # it may have been processed
        slow.tag_image(image, TagRequest())
        with pytest.raises(SpendCapError):
            slow.tag_image(image, TagRequest())
    assert auth.spent_today(store, "bob@example.com") == 2


def test_a_give_back_the_database_refuses_keeps_the_charge_and_imaggas_error_is_what_the_caller_sees():
    charges: list[int] = []

    def meter(calls: int) -> None:
        if calls < 0:
            raise StoreUnavailableError("the database is down")
        charges.append(calls)

    def refused() -> dict:
        raise ServerError("Imagga had a server error (HTTP 503)")

    with pytest.raises(ServerError, match="HTTP 503"):
        paid_call(meter, refused)
    assert charges == [1]
    assert paid_call(meter, lambda: {"result": {}}) == {"result": {}} and charges == [1, 1]


def test_a_give_back_goes_through_over_the_cap_and_never_below_zero(open_db):
    store = open_db()
    GuardedStore(store, ADA).set_cap("bob@example.com", 5)
    assert auth.charge(store, "bob@example.com", 4) == 4
    GuardedStore(store, ADA).set_cap("bob@example.com", 1)  # an admin lowers the cap below today's use
    assert auth.charge(store, "bob@example.com", -1) == 3
    assert auth.charge(store, "carol@example.com", -1) == 0  # charged yesterday, given back today
    assert auth.spent_today(store, "carol@example.com") == 0


def test_a_batch_stops_at_the_cap_with_the_reason(tmp_path):
    target = str(tmp_path / "t.db")
    store = Store(target)
    GuardedStore(store, ADA).set_cap(None, 3)
    meter = GuardedStore(store, BOB).meter(target)
    with serve(ImaggaStandin()) as (standin, url):
        factory = PerThreadImagga(CREDENTIALS, url, meter=meter, backoff_factor=0)
        report = run_batch(_files(tmp_path / "in", 8), ImaggaBackend(None), TagRequest(),
                           backend_key=backend_id(IMAGGA, url), backend_factory=factory, concurrency=1)
        assert standin.count("POST", "/v2/tags") == 3
    assert report.count(OK) == 3 and report.aborted and "3 paid Imagga calls" in report.aborted
    assert report.count(SKIPPED) + report.count(OK) + report.count(CACHED) < 9
    assert auth.spent_today(store, "bob@example.com") == 3


def test_the_cap_holds_across_dask_workers(dask_client, tmp_path):
    target = str(tmp_path / "tagging.db")
    store = Store(target)
    GuardedStore(store, ADA).set_cap("bob@example.com", 5)
    with serve(ImaggaStandin()) as (standin, url):
        spec = replace(_imagga(url, tmp_path, cap=2), meter=GuardedStore(store, BOB).meter(target))
        report = run_on_cluster(dask_client, _files(tmp_path / "in", 16), spec)
        assert standin.count("POST", "/v2/tags") == 5
    assert report.count(OK) == 5 and report.aborted and "5 paid Imagga calls" in report.aborted
    assert auth.spent_today(store, "bob@example.com") == 5


# --- the migration, from the version before it, on both databases ---------------------------------
def test_the_users_audit_spend_migration_upgrades_the_previous_version_and_keeps_the_outbox(open_db):
    number = next(m.version for m in MIGRATIONS if m.apply.__name__ == "_users_roles_audit_spend")
    store = open_db(migrate=False)
    assert store.migrate(number - 1) == number - 1
    with store.engine.begin() as conn:  # as the version before wrote it: no queued_by column yet
        conn.execute(sa.text("INSERT INTO images (image_key, filename, source, created_at, updated_at) VALUES "
                             "('img', 'cat.jpg', 'Upload', 't0', 't0')"))
        conn.execute(sa.text("INSERT INTO verdict_sets (image_key, backend, language, provenance, threshold, "
                             "min_tags, saved_at, saved_by) VALUES ('img', 'imagga', 'en', 'reviewed', 60, 3, 't1', "
                             "'old analyst')"))
        conn.execute(sa.text("INSERT INTO feedback (image_key, backend, language, tag, confidence, accepted, "
                             "threshold, min_tags, saved_at) VALUES ('img', 'imagga', 'en', 'cat', 90, :t, 60, 3, "
                             "'t1'), ('img', 'imagga', 'en', 'pet', 40, :f, 60, 3, 't1')"), {"t": True, "f": False})
        conn.execute(sa.text("INSERT INTO outbox (idempotency_key, image_key, backend, payload, status, attempts,"
                             " created_at) VALUES ('k1', 'img', 'imagga', '{}', 'pending', 0, 't')"))
    names = set(sa.inspect(store.engine).get_table_names())
    assert not {"users", "audit", "spend"} & names
    assert store.migrate(number) == number
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"users", "audit", "spend"} <= names
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT idempotency_key, queued_by FROM outbox")).all() == [("k1", None)]
    assert store.verdict_set("img", IMAGGA, "en").saved_by == "old analyst"
    assert len(store.feedback_for("img", IMAGGA, "en")) == 2
    store.migrate()
    GuardedStore(store, ADA).set_role("bob@example.com", ANALYST)
    assert auth.users_of(store)[0].role == ANALYST and auth.charge(store, "bob@example.com") == 1
    with pytest.raises(sa.exc.IntegrityError):  # the table refuses a role that is not one
        with store.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (identity, role) VALUES ('x', 'owner')"))


def test_a_reload_is_the_same_person_only_for_the_same_identity(tmp_path):
    """A kept Review session comes back after a reload only to the same person on the same store."""
    store, other = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    assert GuardedStore(store, BOB).same_as(GuardedStore(store, BOB))
    assert not GuardedStore(store, BOB).same_as(GuardedStore(store, ADA))  # another signed-in person
    assert not GuardedStore(store, BOB).same_as(GuardedStore(other, BOB))  # another database
    assert not GuardedStore(store, BOB).same_as(store)
    first, reloaded = Identity("session-1", ADMIN, auth.LOCAL), Identity("session-2", ADMIN, auth.LOCAL)
    assert GuardedStore(store, first).same_as(GuardedStore(store, reloaded))  # no sign-in: the name is a label
    assert not GuardedStore(store, first).same_as(GuardedStore(store, Identity("session-1", ADMIN, auth.PROXY)))
