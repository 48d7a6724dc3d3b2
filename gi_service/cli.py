"""Management commands: `gi-service db upgrade`, `users create`, `tokens create`, `demo load`, `serve`."""
from __future__ import annotations

import os
import signal
import sys

import click
from sqlalchemy import select

from . import clock
from .config import ConfigError, finalize, load_settings


def _settings(**overrides):
    from . import datacrypt, keystore

    try:
        settings = load_settings(**overrides)
        # Every engine a command makes reads and writes the encrypted columns with these keys.
        datacrypt.set_default(keystore.from_settings(settings))
    except (ConfigError, keystore.KeyStoreError) as exc:
        raise click.ClickException(str(exc)) from None
    return settings


# The public base URL `gi-service serve` puts in label QR codes, recorded in the instance directory so
# that the label commands print the same one without being told the port again.
SERVED_BASE_URL_FILE = "public_base_url"


def _record_served_base_url(settings) -> None:
    """Write the base URL the server's labels carry into instance/public_base_url (not in production)."""
    if settings.is_production:
        return
    path = settings.instance_path / SERVED_BASE_URL_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(settings.public_base_url + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        click.echo(f"warning: cannot record the public base URL in {path} ({exc}); `gi-service labels render` "
                   "needs GI_PUBLIC_BASE_URL or GI_HOST/GI_PORT to print the same QR codes", err=True)


def _label_base_url(settings) -> tuple[str, str]:
    """The base URL label QR codes made here carry, and where it comes from.

    GI_PUBLIC_BASE_URL when it is set (always in production); else the one the last `gi-service serve`
    of this instance recorded (it served on that address); else http://GI_HOST:GI_PORT, as the server
    derives it.
    """
    if os.environ.get("GI_PUBLIC_BASE_URL", "").strip() or settings.is_production:
        return settings.public_base_url, "GI_PUBLIC_BASE_URL"
    path = settings.instance_path / SERVED_BASE_URL_FILE
    try:
        recorded = path.read_text(encoding="utf-8").strip().rstrip("/")
    except OSError:
        recorded = ""
    if recorded:
        try:
            checked = finalize(settings.with_overrides(public_base_url=recorded))
        except ConfigError as exc:
            raise click.ClickException(f"{path}: {exc}") from None
        return checked.public_base_url, f"recorded by `gi-service serve` in {path}"
    return settings.public_base_url, "GI_HOST/GI_PORT"


def _session():
    from sqlalchemy.orm import Session

    from .db import make_engine

    return Session(make_engine(_settings().database_url), expire_on_commit=False)


@click.group()
def main() -> None:
    """gi-service: GI registry, special-mark ledger and supervision."""


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the database to REVISION (default: head)."""
    from . import migrate

    settings = _settings()
    if settings.is_sqlite:
        settings.instance_path.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url, revision)
    click.echo(f"database at {migrate.current(settings.database_url)}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. base)."""
    from . import migrate

    migrate.downgrade(_settings().database_url, revision)


@db.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    from . import migrate

    click.echo(migrate.current(_settings().database_url) or "(empty database)")


@main.group()
def users() -> None:
    """User accounts."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--organisation-id", type=int, required=True, help="id of the user's organisation")
@click.option("--display-name")
@click.password_option(help="by the password rules (GI_PASSWORD_MIN_LENGTH, GI_PASSWORD_MIN_CLASSES)")
def users_create(username: str, organisation_id: int, display_name: str | None, password: str) -> None:
    """Create a user in an organisation."""
    from .errors import GIError
    from .services import accounts
    from .services.passwords import SignInPolicy

    settings = _settings()
    with _session() as session:
        try:
            user = accounts.create_user(session, username=username, password=password,
                                        organisation_id=organisation_id, display_name=display_name,
                                        policy=SignInPolicy.from_settings(settings))
        except GIError as exc:
            raise click.ClickException(exc.message) from None
        session.commit()
        click.echo(f"user {user.username} (id {user.id}) created in organisation {organisation_id}")


@users.command("reset-2fa")
@click.argument("username")
def users_reset_2fa(username: str) -> None:
    """Turn a user's two-factor sign-in off (phone lost, or the top authority's own): the next sign-in sets it up
    again, and the user's web sessions end. Authorities reset their jurisdiction's users on the API."""
    from .models import User
    from .services import totp

    with _session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        totp.clear(session, user)
        session.commit()
        click.echo(f"two-factor sign-in of {username} reset; it is set up again at the next sign-in")


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """End a user's sign-in lockout now (it also ends by itself) and clear the failure count."""
    from .models import User
    from .services import passwords

    with _session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        passwords.record_success(user)
        session.commit()
        click.echo(f"{username} unlocked")


@main.group()
def orgs() -> None:
    """Organisations."""


@orgs.command("create")
@click.option("--kind", type=click.Choice(["authority", "producer", "printer", "inspection"]), required=True)
@click.option("--name", required=True)
@click.option("--adcode", help="jurisdiction (authority, inspection) or registered place")
@click.option("--uscc", help="unified social credit code (producers and printers)")
def orgs_create(kind: str, name: str, adcode: str | None, uscc: str | None) -> None:
    """Register an organisation (the first national authority is created this way)."""
    from .errors import GIError
    from .models import OrgKind
    from .services import accounts

    with _session() as session:
        try:
            org = accounts.create_organisation(session, kind=OrgKind(kind), name=name, adcode=adcode, uscc=uscc)
        except GIError as exc:
            raise click.ClickException(exc.message) from None
        session.commit()
        click.echo(f"organisation {org.name} (id {org.id}, {org.kind.value}, {org.adcode}) created")


@main.group()
def tokens() -> None:
    """API bearer tokens (stored hashed; shown once)."""


@tokens.command("create")
@click.option("--username", required=True)
@click.option("--name", default="cli", show_default=True)
@click.option("--ttl-days", type=int, default=90, show_default=True)
def tokens_create(username: str, name: str, ttl_days: int) -> None:
    """Create a token for a user and print it once."""
    from .errors import GIError
    from .models import User
    from .services import accounts

    with _session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        try:
            # The operator on the host stands behind it: as strong as a two-factor sign-in.
            row, plaintext = accounts.create_token(session, user, name=name, ttl_days=ttl_days, two_factor=True)
        except GIError as exc:
            raise click.ClickException(exc.message) from None
        session.commit()
        click.echo(f"token id {row.id} for {username}, expires {row.expires_at:%Y-%m-%d} (shown once):")
        click.echo(plaintext)


@tokens.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    from .models import ApiToken

    with _session() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise click.ClickException(f"no token {token_id}")
        row.revoked_at = row.revoked_at or clock.now()
        session.commit()
        click.echo(f"token {token_id} revoked")


@main.group()
def ledger() -> None:
    """The special-mark ledger (hash chain, checkpoints)."""


@ledger.command("verify")
def ledger_verify() -> None:
    """Recompute the whole chain; name the first broken event (exit 1 if any)."""
    from .services import ledger as ledger_service

    settings = _settings()
    signer = _signer(settings)
    with _session() as session:
        result = ledger_service.verify(session, signer=signer)
    if result.ok:
        click.echo(f"ledger OK: {result.events} events, head {result.head_seq} {result.head_hash}, "
                   f"{result.checkpoints_checked} signed checkpoint(s) consistent")
        return
    click.echo(f"ledger BROKEN at event {result.first_broken_seq}: {result.problem}", err=True)
    sys.exit(1)


@ledger.command("checkpoint")
def ledger_checkpoint() -> None:
    """Sign the current chain head as a checkpoint (run it from cron)."""
    from .db import write_session
    from .db import make_engine
    from .services import ledger as ledger_service

    settings = _settings()
    signer = _signer(settings)
    with write_session(make_engine(settings.database_url)) as session:
        cp = ledger_service.create_checkpoint(session, signer)
        session.commit()
        click.echo(f"checkpoint {cp.id}: event {cp.seq} hash {cp.hash} signed by key {cp.key_id}")


@main.group()
def scans() -> None:
    """The consumer scan log."""


@scans.command("partitions")
@click.option("--ahead", type=click.IntRange(min=0, max=24), default=3, show_default=True,
              help="months after this one to make partitions for")
def scans_partitions(ahead: int) -> None:
    """Make the check log's monthly partitions ahead (PostgreSQL; cron, daily; safe on several hosts at once)."""
    from .services import partitions

    with _session() as session:
        if not partitions.is_partitioned(session):
            click.echo("the check log is one table on this database (SQLite): nothing to make")
            return
        made = partitions.ensure_months(session, today=clock.now().date(), ahead=ahead)
        session.commit()
    click.echo(f"made {len(made)} partition(s): {', '.join(made)}" if made else
               f"every month up to {ahead} ahead has its partition already")


@scans.command("prune")
@click.option("--ip-hash-days", type=click.IntRange(min=1), default=30, show_default=True,
              help="clear the keyed IP hashes of checks older than this")
@click.option("--scan-days", type=click.IntRange(min=1), default=730, show_default=True,
              help="delete checks older than this (those a clue points to are kept as evidence)")
def scans_prune(ip_hash_days: int, scan_days: int) -> None:
    """Apply the scan log's retention policy (safe to run daily)."""
    from .services import scans as scan_service

    with _session() as session:
        result = scan_service.prune(session, ip_hash_days=ip_hash_days, scan_days=scan_days)
    click.echo(f"cleared {result.ip_hashes_cleared} IP hashes older than {ip_hash_days} days; deleted "
               f"{result.scans_deleted} checks older than {scan_days} days; kept {result.kept_as_evidence} "
               f"older checks that clues point to; forgot {result.id_blocks_deleted} check-id blocks taken "
               "over 30 days ago")
    if result.partitions_dropped:
        click.echo(f"dropped whole months: {', '.join(result.partitions_dropped)}")


@main.group()
def labels() -> None:
    """Special-mark labels and print files."""


@labels.command("render")
@click.argument("batch_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["pdf", "csv", "png-zip"]), default="pdf", show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), help="default: order-ID.EXT")
@click.option("--preset", type=click.Choice(["20x20", "30x30", "40x60"]), default="30x30", show_default=True)
@click.option("--width-mm", type=float, help="custom label width (with --height-mm)")
@click.option("--height-mm", type=float)
@click.option("--dpi", type=click.Choice(["300", "600"]), default="300", show_default=True)
@click.option("--ec", type=click.Choice(["M", "Q"]), default="M", show_default=True, help="QR error correction")
@click.option("--paper", type=click.Choice(["A4", "A3"]), default="A4", show_default=True)
@click.option("--workers", type=int, default=1, show_default=True,
              help="processes drawing PDF pages (0 = all cores; on 2 cores one process measured faster)")
def labels_render(batch_id: int, fmt: str, out_path: str | None, preset: str, width_mm: float | None,
                  height_mm: float | None, dpi: str, ec: str, paper: str, workers: int) -> None:
    """Write an order's print file with a progress bar (recorded in the ledger like a download)."""
    from pathlib import Path

    from labels.errors import LabelError

    from .codes import MarkKeyring
    from .db import make_engine, write_session
    from .errors import GIError
    from .services import labels as label_service
    from .storage import FileStore

    settings = _settings()
    base_url, base_source = _label_base_url(settings)
    keyring = MarkKeyring.from_setting(settings.mark_keys, settings.mark_key_id)
    store = FileStore(settings.storage_dir or settings.instance_path / "storage")
    ext = {"pdf": "pdf", "csv": "csv", "png-zip": "zip"}[fmt]
    path = Path(out_path or f"order-{batch_id}.{ext}")
    try:
        spec = label_service.label_spec(preset=None if width_mm else preset, width_mm=width_mm,
                                        height_mm=height_mm, dpi=int(dpi), ec=ec)
        with write_session(make_engine(settings.database_url)) as session:
            batch, repeated = label_service.record_print_download(session, batch_id, by=None, fmt=fmt)
            facts = label_service.label_facts(session, batch, store)
            session.commit()
    except (GIError, LabelError) as exc:
        raise click.ClickException(exc.message) from None
    if repeated:
        click.echo(f"note: order {batch_id} was already downloaded {batch.print_downloads - 1} time(s); "
                   "this download is flagged on the order", err=True)
    click.echo(f"QR codes point at {base_url}/… ({base_source})", err=True)
    marks_iter = label_service.iter_batch_marks(batch, keyring, base_url)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as fh, click.progressbar(length=batch.quantity, label=f"order {batch_id} → {path}",
                                                      show_pos=True, show_eta=True) as bar:
            label_service.write_print_file(fmt, fh, batch=batch, facts=facts, marks=marks_iter, spec=spec,
                                           paper=paper, workers=workers, progress=bar.update)
        tmp.replace(path)
    except LabelError as exc:
        tmp.unlink(missing_ok=True)
        raise click.ClickException(exc.message) from None
    click.echo(f"wrote {batch.quantity} labels to {path} ({path.stat().st_size:,} bytes)")


@main.group()
def keys() -> None:
    """Key material for special-mark codes and ledger checkpoints."""


@keys.command("generate")
@click.option("--mark-key-id", default="A", show_default=True, help="letter of the new mark key")
@click.option("--suite", type=click.Choice(["intl", "sm"]), default="intl", show_default=True,
              help="intl: HMAC-SHA-256 codes, Ed25519 checkpoints; sm: China's commercial cryptography "
                   "(HMAC-SM3 codes, SM2 checkpoints; run with GI_CRYPTO_SUITE=sm)")
def keys_generate(mark_key_id: str, suite: str) -> None:
    """Print fresh GI_MARK_KEYS / GI_MARK_KEY_ID / GI_LEDGER_SIGNING_KEY values (store them as secrets)."""
    from .codes import MarkKeyring
    from .config import _new_signing_key, _new_sm2_signing_key

    _ring, text = MarkKeyring.generate(mark_key_id, "hmac-sm3" if suite == "sm" else "hmac-sha256")
    click.echo(f"GI_MARK_KEYS={text}")
    click.echo(f"GI_MARK_KEY_ID={mark_key_id}")
    click.echo("GI_LEDGER_SIGNING_KEY=" + (_new_sm2_signing_key() if suite == "sm" else _new_signing_key()))
    from .keystore import AES_GCM, SM4_GCM, new_key

    data_key_id = "S1" if suite == "sm" else "D1"
    click.echo("GI_DATA_KEYS=" + new_key(data_key_id, SM4_GCM if suite == "sm" else AES_GCM))
    click.echo(f"GI_DATA_KEY_ID={data_key_id}")
    if suite == "sm":
        click.echo("GI_CRYPTO_SUITE=sm")
    click.echo("# to rotate data keys, append a new ID:SUITE:KEY to GI_DATA_KEYS, make it GI_DATA_KEY_ID and run "
               "`gi-service keys rotate-data`; only then may the old key go", err=True)
    click.echo("# to rotate mark keys later (or switch suite), append a new KID:[SUITE:]KEY to GI_MARK_KEYS and "
               "switch GI_MARK_KEY_ID; "
               "never remove a key that printed labels were made with", err=True)


@keys.command("rotate-data")
@click.option("--batch", type=int, default=500, show_default=True, help="rows re-encrypted per transaction")
def keys_rotate_data(batch: int) -> None:
    """Re-encrypt personal data stored under other data keys with the current one (GI_DATA_KEY_ID); safe to
    run again or to interrupt. Afterwards the old keys can be removed from GI_DATA_KEYS."""
    from . import datacrypt
    from .db import make_engine

    settings = _settings()
    store = datacrypt.keystore_for(None)
    engine = make_engine(settings.database_url)
    counts = datacrypt.rotate(engine, store, batch=batch)
    for column, n in counts.items():
        click.echo(f"{column}: {n} re-encrypted under {store.current_key_id()}")


@main.group()
def demo() -> None:
    """Demonstration data (real GIs and boundaries, invented producers)."""


@demo.command("load")
def demo_load() -> None:
    """Load the demo data; running it again changes nothing."""
    from .demo import load_demo

    settings = _settings()
    if settings.is_production:
        raise click.ClickException("refusing to load demo data in production mode")
    with _session() as session:
        created = load_demo(session, key_id=settings.mark_key_id)
        session.commit()
    click.echo("demo data loaded" if created else "demo data already present")


@main.command("serve")
@click.option("--host", default=None)
@click.option("--port", type=click.IntRange(1, 65535), default=None)
@click.option("--threads", type=int, default=8, show_default=True)
def serve(host: str | None, port: int | None, threads: int) -> None:
    """Serve the application with waitress (embedded mode; use gunicorn in production).

    Label QR codes carry GI_PUBLIC_BASE_URL, else the address served on (--host/--port, else
    GI_HOST/GI_PORT); it is recorded in instance/public_base_url for `gi-service labels render`.
    """
    from waitress import serve as waitress_serve

    from . import create_app
    from .demo import banner
    from .services import jurisdiction

    settings = _settings(**{k: v for k, v in (("host", host), ("port", port)) if v is not None})
    host, port = settings.host, settings.port
    app = create_app(settings)
    _record_served_base_url(settings)
    # The county boundaries, loaded now rather than by the first place lookup (seconds on a first run).
    click.echo("loading the county boundaries…")
    jurisdiction.preload()
    click.echo(banner(settings, host, port))
    click.echo(f"Label QR codes point at {settings.public_base_url} (`gi-service labels render` uses it too).\n")
    sys.stdout.flush()
    # SIGTERM (a service manager's stop) exits like Ctrl-C: through the interpreter's exit path, where
    # the check log writes the checks still buffered (services/checklog.py).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    waitress_serve(app, host=host, port=port, threads=threads, ident="gi-service")


@main.group()
def authorizations() -> None:
    """Authorizations to use the special mark."""


@authorizations.command("expire")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="the day to judge from (YYYY-MM-DD; default: today in China)")
@click.option("--dry-run", is_flag=True, help="list what would lapse; change nothing")
def authorizations_expire(today, dry_run: bool) -> None:
    """Lapse approved authorizations with no mark use for GI_AUTHORIZATION_LAPSE_DAYS (safe to run daily)."""
    from .db import make_engine, write_session
    from .services import producers

    settings = _settings()
    day = today.date() if today else clock.today()
    engine = make_engine(settings.database_url)
    try:
        with write_session(engine) as session:
            lapses = producers.lapse_unused(session, today=day, lapse_days=settings.authorization_lapse_days,
                                            dry_run=dry_run)
            if not dry_run:
                session.commit()
    finally:
        engine.dispose()
    verb = "would lapse" if dry_run else "lapsed"
    for lapse in lapses:
        click.echo(f"{verb} authorization {lapse.authorization_id}: {lapse.producer_name} (producer "
                   f"{lapse.producer_id}) for {lapse.gi_name} (GI {lapse.gi_id}); last {lapse.activity} "
                   f"{lapse.last_activity.isoformat()}, {lapse.idle_days} days ago")
    click.echo(f"{len(lapses)} authorization(s) {verb} as of {day.isoformat()} "
               f"(limit {settings.authorization_lapse_days} days without mark use)")


@main.group("reports")
def reports_group() -> None:
    """Reports for the authorities."""


@reports_group.group("annual")
def annual_reports_group() -> None:
    """Annual usage reports of the special mark: who is missing, and the rollup for the provincial filing."""


def _annual_options(command):
    for option in reversed([
        click.option("--as", "username", required=True,
                     help="the authority or inspection account whose jurisdiction the report covers"),
        click.option("--year", type=int, default=None, help="the reporting year (default: last year, China time)"),
        click.option("--adcode", default=None, help="a province, city or county (rollup default: the account's)"),
        click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "pdf", "json"]), default="csv",
                     show_default=True),
        click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default=None,
                     help="write to this file (default: standard output; a PDF or an Excel file needs --out)"),
    ]):
        command = option(command)
    return command


def _annual_run(username: str, year: int | None, fmt: str, out_path: str | None, build) -> None:
    import json

    from .errors import GIError
    from .models import User
    from .services.accounts import principal_for

    if fmt in ("pdf", "xlsx") and not out_path:
        raise click.ClickException(f"a{'n Excel file' if fmt == 'xlsx' else ' PDF'} needs --out FILE")
    year = year or clock.china_year(clock.now()) - 1
    with _session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.is_active:
            raise click.ClickException(f"no active user {username!r}")
        try:
            body = build(session, principal_for(user), year)
        except GIError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from None
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False, indent=2, default=str).encode() + b"\n"
    if out_path:
        with open(out_path, "wb") as fh:
            fh.write(body)
        click.echo(f"wrote {out_path} ({len(body):,} bytes)", err=True)
    else:
        click.echo(body, nl=False)


@annual_reports_group.command("rollup")
@_annual_options
def annual_rollup(username: str, year: int | None, adcode: str | None, fmt: str, out_path: str | None) -> None:
    """The submitted reports of a region rolled up per GI, with who has not submitted (due 31 March)."""
    from .render.csv import annual_rollup_csv
    from .render.pdf import annual_rollup_pdf
    from .render.sheets import annual_rollup_table
    from .render.xlsx import xlsx_bytes
    from .services import annual_reports as ar

    def build(session, principal, year):
        data = ar.rollup(session, principal, year, adcode=adcode)
        return {"csv": annual_rollup_csv, "pdf": annual_rollup_pdf,
                "xlsx": lambda d: xlsx_bytes(annual_rollup_table(d))}.get(fmt, lambda d: d)(data)

    _annual_run(username, year, fmt, out_path, build)


@annual_reports_group.command("listing")
@_annual_options
@click.option("--status", type=click.Choice(["submitted", "draft", "missing", "late", "overdue"]), default=None,
              help="only producers in this state (e.g. overdue, for reminders)")
def annual_listing(username: str, year: int | None, adcode: str | None, fmt: str, out_path: str | None,
                   status: str | None) -> None:
    """Every producer that had to report the year, with its report's status (submitted, late, draft, missing)."""
    from .render.csv import annual_listing_csv
    from .render.pdf import annual_listing_pdf
    from .render.sheets import annual_listing_table
    from .render.xlsx import xlsx_bytes
    from .services import annual_reports as ar

    def build(session, principal, year):
        data = ar.listing(session, principal, year, adcode=adcode, status=status)
        return {"csv": annual_listing_csv, "pdf": annual_listing_pdf,
                "xlsx": lambda d: xlsx_bytes(annual_listing_table(d))}.get(fmt, ar.public_listing)(data)

    _annual_run(username, year, fmt, out_path, build)


@main.command("import")
@click.argument("kind", type=click.Choice(["producers", "authorizations", "plots"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--as", "username", required=True,
              help="the authority account the import is made as: its jurisdiction and rules apply")
@click.option("--dry-run", is_flag=True, help="check every row and write nothing")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="also write the full report as JSON to this file")
@click.option("--max-rows", type=click.IntRange(min=1), default=None,
              help="take up to this many rows (default GI_IMPORT_MAX_ROWS, plots GI_IMPORT_MAX_PLOT_ROWS: the "
                   "limits of an import through HTTP, which must end within the proxy's timeout)")
def import_file(kind: str, path: str, username: str, dry_run: bool, report_path: str | None,
                max_rows: int | None) -> None:
    """Import producers, authorizations or plots from an .xlsx or CSV file (the template of
    GET /api/v1/imports/{kind}/template): every row is checked, then all are written or none.
    Exits 1 when a row has a problem (each is listed: row, column, what to fix)."""
    import json
    from pathlib import Path

    from .errors import GIError
    from .models import User
    from .services import imports
    from .services.accounts import principal_for

    settings = _settings()
    data = Path(path).read_bytes()
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=f"{'checking' if dry_run else 'importing'} {kind}",
                                    file=sys.stderr, show_pos=True)
            bar.__enter__()
        bar.update(1)

    with _session() as session:
        session.connection(execution_options={"gi_write": True})   # SQLite: the write lock at BEGIN
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.is_active:
            raise click.ClickException(f"no active user {username!r}")
        try:
            report = imports.run_import(session, kind, Path(path).name, data, by=principal_for(user),
                                        dry_run=dry_run,
                                        limits=imports.Limits.from_settings(settings, max_rows=max_rows),
                                        progress=progress)
        except GIError as exc:
            session.rollback()
            raise click.ClickException(f"{exc.code}: {exc.message}") from None
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        if report.written:
            session.commit()
        else:
            session.rollback()
    if report_path:
        Path(report_path).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n",
                                     encoding="utf-8")
    for p in report.problems:
        click.echo(f"row {p.row if p.row is not None else '-'}\t{p.column or '-'}\t{p.code}\t{p.message}")
    done = "written" if report.written else "checked, nothing written" if report.valid else "nothing written"
    click.echo(f"{kind}: {report.rows} rows, {report.created} {'created' if report.written else 'to create'}, "
               f"{report.unchanged} unchanged, {len({p.row for p in report.problems})} with problems ({done})",
               err=True)
    if report.problems:
        sys.exit(1)


@main.group("audit")
def audit_group() -> None:
    """The audit trail of staff actions: sealing into the hash chain, checkpoints, verification, retention, backup."""


def _signer(settings):
    from .services import ledger as ledger_service

    try:
        return ledger_service.CheckpointSigner(settings.ledger_signing_key)
    except ValueError as exc:
        raise click.ClickException(f"GI_LEDGER_SIGNING_KEY: {exc}") from None


def _configure_chain_hash(settings) -> None:
    from .services import ledger as ledger_service

    ledger_service.configure("sm3" if settings.crypto_suite == "sm" else "sha256")


@audit_group.command("seal")
def audit_seal() -> None:
    """Chain the records not chained yet (cron, every minute; the service also does it after each request)."""
    from .db import make_engine, write_session
    from .services import audit as audit_service

    settings = _settings()
    _configure_chain_hash(settings)
    engine = make_engine(settings.database_url)
    total = 0
    try:
        while True:
            with write_session(engine) as session:
                count = audit_service.seal(session)
                session.commit()
            total += count
            if count == 0:
                break
    finally:
        engine.dispose()
    click.echo(f"sealed {total} audit record(s)")


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Seal, then sign the chain's head as a checkpoint (cron, daily); save what it prints elsewhere."""
    from .db import make_engine, write_session
    from .services import audit as audit_service

    settings = _settings()
    _configure_chain_hash(settings)
    signer = _signer(settings)
    engine = make_engine(settings.database_url)
    try:
        with write_session(engine) as session:
            audit_service.seal(session)
            cp = audit_service.checkpoint(session, signer)
            session.commit()
    finally:
        engine.dispose()
    click.echo(f"audit checkpoint {cp.id}: record {cp.seq} hash {cp.hash} signed by key {cp.key_id} "
               f"({signer.algorithm}) at {cp.created_at.isoformat()}: {cp.signature}")


@audit_group.command("verify")
def audit_verify() -> None:
    """Recompute the chain (from the last signed prune checkpoint); name the first broken record (exit 1 if any)."""
    from .services import audit as audit_service

    settings = _settings()
    signer = _signer(settings)
    with _session() as session:
        result = audit_service.verify(session, signer=signer)
    if result.ok:
        start = f"from the signed prune checkpoint at record {result.start_seq}" if result.start_seq else \
            "from genesis"
        click.echo(f"audit trail OK: {result.records} records {start}, head {result.head_seq} {result.head_hash}, "
                   f"{result.checkpoints_checked} signed checkpoint(s) consistent, {result.pending} not sealed yet")
        return
    click.echo(f"audit trail BROKEN at record {result.first_broken_seq}: {result.problem}", err=True)
    sys.exit(1)


@audit_group.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="keep this many days (default GI_AUDIT_RETENTION_DAYS; at least 180 in production)")
def audit_prune(days: int | None) -> None:
    """Delete records older than the retention period, leaving a signed checkpoint at the cut (cron, daily)."""
    from .config import AUDIT_MIN_RETENTION_DAYS
    from .db import make_engine, write_session
    from .errors import GIError
    from .services import audit as audit_service

    settings = _settings()
    _configure_chain_hash(settings)
    signer = _signer(settings)
    days = days or settings.audit_retention_days
    engine = make_engine(settings.database_url)
    try:
        with write_session(engine) as session:
            result = audit_service.prune(session, signer, retention_days=days,
                                         minimum_days=AUDIT_MIN_RETENTION_DAYS if settings.is_production else 1)
            session.commit()
    except GIError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        engine.dispose()
    if result.deleted:
        click.echo(f"deleted {result.deleted} audit record(s) up to record {result.cut_seq} (older than "
                   f"{days} days); signed prune checkpoint {result.checkpoint_id} at the cut")
    else:
        click.echo(f"no audit record older than {days} days to delete")


@audit_group.command("export")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), required=True,
              help="the JSON-lines file to write (a header line, then one record per line)")
def audit_export(out_path: str) -> None:
    """Write every record with its chain fields, the head and the checkpoints to a file (full backup)."""
    import json
    from pathlib import Path

    from .models import AuditCheckpoint, AuditHead
    from .services import audit as audit_service

    settings = _settings()
    signer = _signer(settings)
    path = Path(out_path)
    tmp = path.with_name(path.name + ".part")
    count = 0
    with _session() as session, open(tmp, "w", encoding="utf-8") as fh:
        head = session.get(AuditHead, 1)
        header = {"format": "gi-service audit export 1", "exported_at": clock.now().isoformat(),
                  "head": {"seq": head.seq, "hash": head.hash} if head else None,
                  "checkpoints": [audit_service.checkpoint_dict(cp) for cp in
                                  session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))],
                  "signing_key": {"algorithm": signer.algorithm, "key_id": signer.key_id,
                                  "public_key_pem": signer.public_key_pem()},
                  "signature_message": "gi-audit-checkpoint|seq|hash|created_at (UTC, microseconds)"}
        fh.write(json.dumps(header, ensure_ascii=False) + "\n")
        for record in audit_service.export(session):
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    click.echo(f"wrote {count} audit record(s) to {path} ({path.stat().st_size:,} bytes)")


# --- the operator's commands in the audit trail ----------------------------------------------------------

# Commands that change nothing (or, `audit seal`, only chain what is recorded): not recorded. Every other
# command, today's and any added later, is recorded as the operator's action (tests/audit/test_cli.py).
UNAUDITED = {"db current", "ledger verify", "keys generate", "serve", "reports annual rollup",
             "reports annual listing", "audit verify", "audit seal"}
_cli_capture = None  # a contextvars.ContextVar of the running command's capture, set by _install_cli_audit


def _cli_params(kwargs: dict) -> dict:
    import datetime as dt

    out = {}
    for name, value in kwargs.items():
        if name == "password" or value is None:
            continue
        out[name] = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else \
            value if isinstance(value, (int, float, bool, str)) else str(value)
    return out


def _cli_target(kwargs: dict) -> str | None:
    parts = [f"{name[:-3]}:{value}" for name, value in kwargs.items() if name.endswith("_id") and value is not None]
    if kwargs.get("username"):
        parts.append(f"user:{kwargs['username']}")
    return "/".join(parts) or None


def _write_cli_record(capture, **record_args) -> None:
    """The command's record in a transaction of its own, and seal; a database without the trail (before
    `db upgrade`) is said, not fatal."""
    from .db import make_engine, write_session
    from .services import audit as audit_service

    try:
        settings = _settings()
        _configure_chain_hash(settings)
        engine = make_engine(settings.database_url)
        try:
            with write_session(engine) as session:
                if record_args:
                    session.add(capture.record(**record_args))
                audit_service.seal(session)
                session.commit()
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - the command's own outcome stands
        click.echo(f"warning: the audit record of `{capture.action}` was not written: {exc}", err=True)


def _os_user() -> str:
    """Who runs the command on the host: the operating-system account."""
    import getpass

    try:
        return getpass.getuser()[:64]
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


def _audited(action: str, callback):
    import functools
    import socket

    from .services import audit as audit_service

    @functools.wraps(callback)
    def run(*args, **kwargs):
        capture = audit_service.Capture(channel="cli", action=action, username=_os_user(),
                                        role="operator", address=socket.gethostname()[:64],
                                        target=_cli_target(kwargs), detail={"params": _cli_params(kwargs)})
        token = _cli_capture.set(capture)
        try:
            result = callback(*args, **kwargs)
        except SystemExit as exc:
            _cli_capture.reset(token)
            if exc.code in (0, None):
                _write_cli_record(capture, **({} if capture.written else {"outcome": audit_service.SUCCESS}))
            else:
                _write_cli_record(capture, outcome=audit_service.FAILURE, error_code="exit_status",
                                  exit_status=str(exc.code))
            raise
        except BaseException as exc:
            _cli_capture.reset(token)
            message = exc.format_message() if isinstance(exc, click.ClickException) else repr(exc)
            code = getattr(exc, "code", None) if not isinstance(exc, click.ClickException) else "command_failed"
            _write_cli_record(capture, outcome=audit_service.FAILURE,
                              error_code=code if isinstance(code, str) else type(exc).__name__,
                              message=message[:500], **({"committed_before_failure": True} if capture.written
                                                        else {}))
            raise
        _cli_capture.reset(token)
        _write_cli_record(capture, **({} if capture.written else {"outcome": audit_service.SUCCESS}))
        return result

    run.gi_audited = action  # type: ignore[attr-defined]
    return run


def _audit_commands(group: click.Group, path: tuple[str, ...] = ()) -> None:
    for name, command in group.commands.items():
        here = (*path, name)
        if isinstance(command, click.Group):
            _audit_commands(command, here)
        elif " ".join(here) not in UNAUDITED and command.callback is not None:
            command.callback = _audited("cli." + ".".join(here), command.callback)


def _install_cli_audit() -> None:
    global _cli_capture
    import contextvars

    from .services import audit as audit_service

    _cli_capture = contextvars.ContextVar("gi_cli_audit", default=None)
    audit_service.watch_commits(lambda session: _cli_capture.get())
    _audit_commands(main)


_install_cli_audit()


if __name__ == "__main__":  # pragma: no cover
    main()
