"""A private, throwaway MariaDB server for tests that need server settings the shared test server
(``LAB_TEST_SERVER_URL``, normally 127.0.0.1:3306) does not have and must not be given.

``start_extra_server`` initialises a new data directory with ``mariadb-install-db`` and starts
``/usr/sbin/mariadbd`` on a free TCP port of 127.0.0.1, with one ``--<key>=<value>`` per option;
``stop_extra_server`` stops it; ``extra_server`` is a context manager doing both::

    with extra_server(tmp_path, {"innodb_force_primary_key": "ON"}) as server:
        with server.connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT @@innodb_force_primary_key")

Everything the server writes (data directory, temporary files, socket, pid file,
``mariadbd.log``) stays in the directory the caller gives, so pytest's ``tmp_path`` keeps it for a
look after a failure. The server reads no option file (``--no-defaults``), keeps InnoDB small and
has a passwordless ``root`` over TCP.
Options that must be fixed when the data directory is created (``innodb_page_size``,
``lower_case_table_names``) are not passed to ``mariadb-install-db`` and so cannot be changed here.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"
HOST = "127.0.0.1"

# Small InnoDB files and buffers: start-up, and the first checkpoint, stay fast and the data
# directory stays around 30 MB. Passed before the caller's options, so those can override them.
SMALL_SERVER_OPTIONS = (
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-log-buffer-size=2M",
)

# Longest path a Unix socket address can hold on Linux (sun_path is 108 bytes with the final NUL).
_MAX_SOCKET_PATH = 107
# Log lines that mean the port was taken between choosing it and the server binding it.
_PORT_TAKEN_MARKERS = ("Address already in use", "Do you already have another server running")
_PORT_ATTEMPTS = 3
_STOP_TIMEOUT = 30.0
_POLL_INTERVAL = 0.05


@dataclass
class ExtraServer:
    """A running extra server, as ``start_extra_server`` returns it.

    ``port`` is its TCP port on 127.0.0.1, ``datadir`` its data directory, ``pid`` the process id of
    ``mariadbd`` (a child of this process, leader of its own process group), ``socket`` its Unix
    socket and ``options`` the caller's options it was started with. ``log`` is the file that holds
    the server's stdout and stderr, ``startup_seconds`` the wall-clock time, in seconds, from the
    start of ``mariadb-install-db`` until the server first accepted a connection.
    """

    port: int
    datadir: Path
    pid: int
    socket: Path
    options: dict
    log: Path | None = None
    startup_seconds: float = 0.0
    process: subprocess.Popen | None = field(default=None, repr=False, compare=False)
    # A directory under /tmp made for the socket because the caller's path was too long for one.
    temporary_socket_dir: Path | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        """A SQLAlchemy URL for ``root`` (no password) on this server, without a database."""
        return f"mysql+pymysql://root@{HOST}:{self.port}"

    def connect(
        self, database: str | None = None, user: str = "root", password: str = "", ssl: dict | None = None
    ) -> pymysql.connections.Connection:
        """An autocommit PyMySQL connection over TCP; ``ssl`` is passed to ``pymysql.connect``.

        Raises ``pymysql.err.OperationalError`` if the server refuses the connection or is gone.
        """
        return pymysql.connect(
            host=HOST,
            port=self.port,
            user=user,
            password=password,
            database=database,
            ssl=ssl,
            autocommit=True,
            local_infile=False,
            connect_timeout=5,
        )


# Servers started and not yet stopped: stopped at interpreter exit if a caller forgot (or a
# teardown never ran), so a test session does not leave a mariadbd behind.
_running: dict[int, ExtraServer] = {}


def _stop_leftovers() -> None:
    for server in list(_running.values()):
        stop_extra_server(server)


atexit.register(_stop_leftovers)


def _free_port() -> int:
    """A TCP port of 127.0.0.1 free at the moment of the call (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _log_tail(log: Path, lines: int = 40, start: int = 0) -> str:
    """The last ``lines`` lines of ``log`` from byte offset ``start`` on."""
    try:
        with log.open("rb") as file:
            file.seek(start)
            text = file.read().decode(errors="replace")
    except OSError as error:
        return f"(no log {log}: {error})"
    return "\n".join(text.splitlines()[-lines:])


def _user_options() -> list[str]:
    """``--user=<name>`` when running as root: mariadbd refuses to run as root without it."""
    if os.geteuid() != 0:
        return []
    try:
        import pwd

        return [f"--user={pwd.getpwuid(0).pw_name}"]
    except (ImportError, KeyError):
        return ["--user=root"]


def _option_arguments(options: Mapping[str, str]) -> list[str]:
    arguments = []
    for key, value in options.items():
        if not key or key.startswith("-") or "=" in key:
            raise ValueError(f"option name {key!r}: give it without leading dashes and without '='")
        arguments.append(f"--{key}={value}")
    return arguments


def _install_datadir(datadir: Path, tmpdir: Path, log: Path, timeout: float) -> None:
    """Run ``mariadb-install-db`` into ``datadir`` (which must not exist yet), its bootstrap server's
    temporary files in ``tmpdir``, its output to ``log``.

    Raises ``RuntimeError`` (with the end of its output) if it fails or takes over ``timeout`` seconds.
    """
    install_db = shutil.which(INSTALL_DB) or shutil.which("mysql_install_db")
    if install_db is None:
        raise RuntimeError(f"{INSTALL_DB} is not on PATH: is the MariaDB server package installed?")
    command = [
        install_db,
        "--no-defaults",  # must come first: ignore /etc/mysql/*.cnf (the shared server's settings)
        f"--datadir={datadir}",
        f"--tmpdir={tmpdir}",  # its bootstrap server deletes every "#sql*" file there too
        "--auth-root-authentication-method=normal",  # root@localhost/127.0.0.1/::1 with no password
        "--skip-test-db",
        "--force",  # no DNS look-up of the host name
        *_user_options(),
        *SMALL_SERVER_OPTIONS,
    ]
    with log.open("wb") as output:
        # Its own process group, so a timeout (or Ctrl-C) also ends the bootstrap mariadbd it runs.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_now(process)
            raise RuntimeError(f"{INSTALL_DB} took over {timeout:.1f} s; the end of {log}:\n{_log_tail(log)}") from None
        except BaseException:
            _kill_now(process)
            raise
    if returncode != 0:
        raise RuntimeError(f"{INSTALL_DB} exited with {returncode}; the end of {log}:\n{_log_tail(log)}")


def _serves_datadir(port: int, datadir: Path) -> bool:
    """Whether the server on ``port`` accepts root and is the one on ``datadir`` (not a stranger)."""
    try:
        # read_timeout too: something else listening on the port may accept and never answer.
        connection = pymysql.connect(
            host=HOST, port=port, user="root", password="", connect_timeout=1, read_timeout=1, write_timeout=1
        )
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT @@datadir")
            row = cursor.fetchone()
            assert row is not None  # a SELECT of a variable answers one row
            (served,) = row
    except pymysql.err.MySQLError:
        return False
    return Path(served).resolve() == datadir.resolve()


def _kill_now(process: subprocess.Popen) -> None:
    """SIGKILL to the process group ``process`` leads (it was started in a session of its own), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def start_extra_server(tmp_dir: Path, options: dict[str, str], timeout: float = 60) -> ExtraServer:
    """Start a private MariaDB server with its files in ``tmp_dir`` and return it once it accepts
    connections.

    ``tmp_dir`` is created if missing; it must not already hold a server's files (``datadir``).
    ``options`` maps server variables to values, each passed as ``--<key>=<value>`` (e.g.
    ``{"wait_timeout": "3"}``), after ``--no-defaults`` and the small InnoDB sizes, so it can override
    them. ``timeout`` (seconds) bounds the whole start, ``mariadb-install-db`` included; here it takes
    about 1 to 3 s. The server listens on a free port of 127.0.0.1 only, runs as the current user
    (``--user=root`` when that is root) in its own process group, and writes its stdout and stderr to
    ``tmp_dir/mariadbd.log``.

    Raises ``ValueError`` for a malformed option name, ``FileExistsError`` if ``tmp_dir/datadir``
    exists, ``RuntimeError`` (with the end of the log) if the data directory cannot be created, the
    server exits (e.g. an unknown option), or it does not accept a connection within ``timeout``; no
    server process is left running then.
    """
    started = time.monotonic()
    deadline = started + timeout
    option_arguments = _option_arguments(options)
    tmp_dir = Path(tmp_dir).resolve()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    datadir = tmp_dir / "datadir"
    if datadir.exists():
        raise FileExistsError(f"{datadir} exists: give start_extra_server a directory of its own")
    tmpdir = tmp_dir / "tmp"
    tmpdir.mkdir(exist_ok=True)
    _install_datadir(datadir, tmpdir, tmp_dir / "install-db.log", timeout)

    socket_dir = None
    socket_path = tmp_dir / "mysqld.sock"
    if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
        socket_dir = Path(tempfile.mkdtemp(prefix="extra-mariadb-"))
        socket_path = socket_dir / "mysqld.sock"
    log = tmp_dir / "mariadbd.log"

    try:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = _free_port()
            command = [
                MARIADBD,
                "--no-defaults",  # must come first
                f"--datadir={datadir}",
                f"--port={port}",
                f"--bind-address={HOST}",
                f"--socket={socket_path}",
                f"--pid-file={tmp_dir / 'mariadbd.pid'}",
                # Its own directory for temporary files: at start-up a server deletes every "#sql*"
                # file in its tmpdir, which in the shared /tmp would be other servers' temporary
                # tables in use (their statement then fails with "Error on delete of ...").
                f"--tmpdir={tmpdir}",
                "--skip-name-resolve",
                *_user_options(),
                *SMALL_SERVER_OPTIONS,
                *option_arguments,
            ]
            with log.open("ab") as output:
                attempt_start = output.tell()
                output.write(f"--- attempt {attempt}: {' '.join(command)}\n".encode())
                output.flush()
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
                )
            try:
                while process.poll() is None and time.monotonic() < deadline:
                    if _serves_datadir(port, datadir):
                        server = ExtraServer(
                            port=port,
                            datadir=datadir,
                            pid=process.pid,
                            socket=socket_path,
                            options=dict(options),
                            log=log,
                            startup_seconds=time.monotonic() - started,
                            process=process,
                            temporary_socket_dir=socket_dir,
                        )
                        _running[server.pid] = server
                        return server
                    time.sleep(_POLL_INTERVAL)
            except BaseException:
                _kill_now(process)
                raise
            if process.poll() is None:
                _kill_now(process)
                raise RuntimeError(
                    f"mariadbd did not accept a connection on port {port} within {timeout:.1f} s; "
                    f"the end of {log}:\n{_log_tail(log)}"
                )
            tail = _log_tail(log, start=attempt_start)
            if attempt < _PORT_ATTEMPTS and any(marker in tail for marker in _PORT_TAKEN_MARKERS):
                continue  # someone took the port after _free_port chose it: choose another
            raise RuntimeError(f"mariadbd exited with {process.returncode}; the end of {log}:\n{tail}")
        raise AssertionError("unreachable")
    except BaseException:
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise


def stop_extra_server(server: ExtraServer) -> None:
    """Stop ``server``: SIGTERM to its pid (a clean shutdown), wait up to 30 s, then SIGKILL to its
    process group; return once the process is gone and reaped. Stopping a stopped server does
    nothing. Its files stay in place. Raises nothing for a server that is already gone.
    """
    _running.pop(server.pid, None)
    process = server.process
    try:
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    _kill_now(process)
        else:
            _stop_foreign_pid(server.pid, server.datadir)
    finally:
        if server.temporary_socket_dir is not None:
            shutil.rmtree(server.temporary_socket_dir, ignore_errors=True)


def _stop_foreign_pid(pid: int, datadir: Path) -> None:
    """The same for an ``ExtraServer`` made without its ``Popen`` (e.g. by hand): signals ``pid`` only
    while it is a mariadbd started on ``datadir``, so a wrong pid can never stop another server.
    """

    def is_that_server() -> bool:
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False  # gone (or no /proc: then nothing is signalled)
        return pid > 1 and os.fsencode(f"--datadir={datadir}") in arguments

    def reaped() -> bool:
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:
            return False  # not our child: its parent reaps it

    if not is_that_server():
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while time.monotonic() < deadline:
        if reaped() or not is_that_server():
            return
        time.sleep(_POLL_INTERVAL)
    if is_that_server():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@contextlib.contextmanager
def extra_server(tmp_dir: Path, options: dict[str, str], timeout: float = 60) -> Iterator[ExtraServer]:
    """``start_extra_server(tmp_dir, options, timeout)`` on entry, ``stop_extra_server`` on exit
    (also when the block raises). Raises what ``start_extra_server`` raises.
    """
    server = start_extra_server(tmp_dir, options, timeout)
    try:
        yield server
    finally:
        stop_extra_server(server)
