"""Process groups: the command-line group of real-world command lines, and kernel threads by base name."""

from __future__ import annotations

import pytest

from monitorkit.collectors.procgroups import MAX_COMMAND, GroupKey, command_group, group_of


@pytest.mark.parametrize(
    ("argv", "group"),
    [
        (["/usr/sbin/sshd", "-D"], "sshd"),
        (["/usr/bin/python3", "-u", "app.py", "--port=8000"], "python3 app.py"),
        (["python3.11", "-W", "ignore", "/srv/tools/sync.py", "x"], "python3.11 sync.py"),
        (["python3", "-m", "http.server", "8000"], "python3 -m http.server"),
        (["python3", "-c", "import time; time.sleep(99)"], "python3 -c"),
        (["/bin/sh", "-c", "curl http://10.0.0.1/?id=42"], "sh -c"),
        (["-bash"], "bash"),
        (["bash", "/etc/cron.daily/logrotate"], "bash logrotate"),
        (["java", "-Xmx1g", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "server.properties"], "java kafka.Kafka"),
        (["java", "-jar", "/opt/app/app-1.2.jar"], "java -jar app-1.2.jar"),
        (["node", "--max-old-space-size=512", "server.js"], "node server.js"),
        (["node"], "node"),
        (["postgres: alice shop 10.0.0.7(51234) idle"], "postgres"),  # a process title over argv
        (["sshd: alice@pts/3", "", ""], "sshd"),
        (["nginx: worker process"], "nginx"),
        (["/opt/My App/bin/app"], "app"),  # one argument with a space that is a path, not a title
        (["/usr/lib/x/daemon: serving 3 clients"], "daemon"),
        ([], ""),
        (["", ""], ""),
        (["/usr/bin/" + "x" * 100], "x" * MAX_COMMAND),
    ],
)
def test_command_group_keeps_what_names_the_program(argv: list[str], group: str) -> None:
    assert command_group(argv) == group


def test_kernel_threads_are_grouped_by_the_name_before_the_slash() -> None:
    assert group_of("kworker/u8:2-events_unbound", "root", []) == GroupKey("kworker", "root", "")
    assert group_of("ksoftirqd/1", "root", []) == GroupKey("ksoftirqd", "root", "")
    assert group_of("kswapd0", "root", []) == GroupKey("kswapd0", "root", "")
    # A user process keeps its whole name, slashes included.
    assert group_of("a/b", "alice", ["/usr/bin/a/b"]) == GroupKey("a/b", "alice", "b")
    assert GroupKey("n", "u", "c").labels() == {"name": "n", "user": "u", "command": "c"}
