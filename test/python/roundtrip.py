#!/usr/bin/python3
"""Control-plane round trip with boto3 (Debian's python3-boto3) against ivschatd.

Starts the server binary (IVSCHATD_BIN, else `go build` into a temp dir) on a
loopback port with a fresh data dir and a test key pair, runs the checks, stops
the server, and prints `python: N passed, M failed` as its last line. Exits
non-zero when any check fails.

Run with the system interpreter: /usr/bin/python3 test/python/roundtrip.py
"""

import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-west-2"
ACCOUNT_ID = "123456789012"
ACCESS_KEY_ID = "AKIDPYTHONTESTACCESS"
SECRET_ACCESS_KEY = "python-test-secret-0123456789abcdefghijkl"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
START_TIMEOUT = 20.0
ROOM_ARN_RE = re.compile(r"^arn:aws:ivschat:us-west-2:123456789012:room/([a-zA-Z0-9]{12})$")
LC_ARN_RE = re.compile(r"^arn:aws:ivschat:us-west-2:123456789012:logging-configuration/([a-zA-Z0-9]{12})$")
ID_RE = re.compile(r"^[a-zA-Z0-9]{12}$")


class Server:
    """The ivschatd process: started on 127.0.0.1:0, stopped by stop()."""

    def __init__(self):
        self.scratch = tempfile.mkdtemp(prefix="ivschatd-py-")
        self.log_path = os.path.join(self.scratch, "stderr.log")
        self.proc = None
        self.endpoint = None

    def binary(self):
        if os.environ.get("IVSCHATD_BIN"):
            return os.environ["IVSCHATD_BIN"]
        out = os.path.join(self.scratch, "ivschatd")
        subprocess.run(["go", "build", "-o", out, "./cmd/ivschatd"], cwd=REPO_ROOT, check=True, timeout=300)
        return out

    def logs(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def start(self):
        binary = self.binary()
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVSCHATD_")}
        env["IVSCHATD_ACCESS_KEY_ID"] = ACCESS_KEY_ID
        env["IVSCHATD_SECRET_ACCESS_KEY"] = SECRET_ACCESS_KEY
        args = [binary, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.scratch, "data"),
                "--region", REGION, "--account-id", ACCOUNT_ID, "--log-format", "text"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT
        addr = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ivschatd exited with %s:\n%s" % (self.proc.returncode, self.logs()))
            m = re.search(r"listen=(127\.0\.0\.1:\d+)", self.logs())
            if m:
                addr = m.group(1)
                break
            time.sleep(0.05)
        if addr is None:
            raise RuntimeError("no ready line from ivschatd in time:\n" + self.logs())
        self.endpoint = "http://" + addr
        # Never route loopback traffic through a proxy from the environment.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        last = None
        while time.monotonic() < deadline:
            try:
                with opener.open(self.endpoint + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
                    last = "status %d" % resp.status
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise RuntimeError("ivschatd /healthz not ready in time (%s):\n%s" % (last, self.logs()))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.scratch, ignore_errors=True)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn):
        try:
            fn()
        except Exception:  # noqa: BLE001 - report every failure and go on
            self.failed += 1
            print("FAIL %s" % name)
            traceback.print_exc(file=sys.stdout)
        else:
            self.passed += 1
            print("ok   %s" % name)


def expect_client_error(fn, code, status):
    try:
        fn()
    except ClientError as e:
        got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), "expected %s/%d, got %r: %r" % (code, status, got, e.response)
        return e
    raise AssertionError("expected %s, but the call succeeded" % code)


def main():
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = "127.0.0.1,localhost"
    server = Server()
    checks = Checks()
    try:
        server.start()
        client = boto3.client(
            "ivschat", endpoint_url=server.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10),
        )
        state = {}
        name = "py-%d" % os.getpid()

        def create_logging_configuration():
            r = client.create_logging_configuration(
                name=name + "-lc", destinationConfiguration={"firehose": {"deliveryStreamName": "chat-logs"}},
                tags={"lang": "python"})
            assert LC_ARN_RE.match(r["arn"]), r["arn"]
            assert r["id"] == LC_ARN_RE.match(r["arn"]).group(1)
            assert r["state"] == "ACTIVE", r
            assert r["destinationConfiguration"] == {"firehose": {"deliveryStreamName": "chat-logs"}}, r
            assert r["tags"] == {"lang": "python"}, r
            state["lc"] = r["arn"]

        def create_room():
            r = client.create_room(
                name=name, maximumMessageRatePerSecond=5, maximumMessageLength=250,
                tags={"owner": "py"}, loggingConfigurationIdentifiers=[state["lc"]])
            m = ROOM_ARN_RE.match(r["arn"])
            assert m and r["id"] == m.group(1), r
            assert r["name"] == name
            assert r["maximumMessageRatePerSecond"] == 5 and r["maximumMessageLength"] == 250, r
            assert r["loggingConfigurationIdentifiers"] == [state["lc"]], r
            assert r["createTime"].tzinfo is not None, "timestamps parse as aware datetimes"
            state["room"] = r

        def get_room():
            r = client.get_room(identifier=state["room"]["arn"])
            for key in ("arn", "id", "name", "maximumMessageLength", "loggingConfigurationIdentifiers", "tags"):
                assert r[key] == state["room"][key], (key, r[key], state["room"][key])
            assert r["createTime"] == state["room"]["createTime"]

        def update_room():
            r = client.update_room(identifier=state["room"]["arn"], name=name + "-2", maximumMessageLength=99)
            assert r["name"] == name + "-2" and r["maximumMessageLength"] == 99, r
            assert r["maximumMessageRatePerSecond"] == 5, "unchanged field kept"
            assert r["updateTime"] >= r["createTime"]

        def list_rooms():
            r = client.list_rooms(name=name + "-2", maxResults=5)
            assert [x["arn"] for x in r["rooms"]] == [state["room"]["arn"]], r["rooms"]
            r = client.list_rooms(loggingConfigurationIdentifier=state["lc"])
            assert [x["arn"] for x in r["rooms"]] == [state["room"]["arn"]], r["rooms"]

        def get_and_list_logging_configurations():
            r = client.get_logging_configuration(identifier=state["lc"])
            assert r["arn"] == state["lc"] and r["state"] == "ACTIVE", r
            listed = client.list_logging_configurations(maxResults=10)["loggingConfigurations"]
            assert state["lc"] in [x["arn"] for x in listed], listed

        def tags():
            arn = state["room"]["arn"]  # botocore percent-encodes it in /tags/{resourceArn}
            client.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
            assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"owner": "py", "a": "1", "b": "2"}
            client.untag_resource(resourceArn=arn, tagKeys=["a", "owner"])
            assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}

        def create_chat_token():
            r = client.create_chat_token(roomIdentifier=state["room"]["arn"], userId="py-user",
                                         capabilities=["SEND_MESSAGE"], sessionDurationInMinutes=15,
                                         attributes={"displayName": "Py"})
            assert re.fullmatch(r"[A-Za-z0-9_-]+", r["token"]), r["token"]
            now = datetime.datetime.now(datetime.timezone.utc)
            session = (r["sessionExpirationTime"] - now).total_seconds()
            assert abs(session - 15 * 60) < 60, "session lasts 15 minutes, got %ss" % session
            assert r["tokenExpirationTime"] > now, r

        def send_event():
            r = client.send_event(roomIdentifier=state["room"]["arn"], eventName="app:hello",
                                  attributes={"k": "v"})
            assert ID_RE.match(r["id"]), r

        def validation_exception():
            e = expect_client_error(lambda: client.create_room(maximumMessageRatePerSecond=101),
                                    "ValidationException", 400)
            fields = [f["name"] for f in e.response.get("fieldList", [])]
            assert "maximumMessageRatePerSecond" in fields, e.response

        def resource_not_found():
            expect_client_error(
                lambda: client.get_room(identifier="arn:aws:ivschat:us-west-2:123456789012:room/Missing00000"),
                "ResourceNotFoundException", 404)

        def delete_room_and_configuration():
            r = client.delete_room(identifier=state["room"]["arn"])
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 204, r
            expect_client_error(lambda: client.get_room(identifier=state["room"]["arn"]),
                                "ResourceNotFoundException", 404)
            r = client.delete_logging_configuration(identifier=state["lc"])
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 204, r
            expect_client_error(lambda: client.get_logging_configuration(identifier=state["lc"]),
                                "ResourceNotFoundException", 404)

        for check in (create_logging_configuration, create_room, get_room, update_room, list_rooms,
                      get_and_list_logging_configurations, tags, create_chat_token, send_event,
                      validation_exception, resource_not_found, delete_room_and_configuration):
            checks.run(check.__name__, check)
    except Exception:  # noqa: BLE001 - a setup failure is a failed check too
        checks.failed += 1
        print("FAIL setup")
        traceback.print_exc(file=sys.stdout)
    finally:
        logs = server.logs()
        server.stop()
    if checks.failed and os.environ.get("IVSCHATD_TEST_DEBUG"):
        print("--- ivschatd stderr ---\n" + logs)
    print("python: %d passed, %d failed" % (checks.passed, checks.failed))
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
