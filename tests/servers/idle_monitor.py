#!/usr/bin/env python3
"""A stand-in for GNOME's idle monitor on the session bus, for scripts/desktop-e2e (no GNOME
Shell runs there). It owns `org.gnome.Mutter.IdleMonitor` and serves
`/org/gnome/Mutter/IdleMonitor/Core` with the one method Passerelle calls, `GetIdletime`
(out `t`, milliseconds since the last input), as declared in Mutter's
`data/dbus-interfaces/org.gnome.Mutter.IdleMonitor.xml`. The watches (`AddIdleWatch`,
`AddUserActiveWatch`, `WatchFired`) are not reproduced: Passerelle does not use them.

The test sets the idle time by writing a number of milliseconds, one per line, on stdin.
It prints "ready" once the name is owned.
"""
import asyncio
import sys
import threading

from dbus_next.aio import MessageBus
from dbus_next.service import ServiceInterface, method


class IdleMonitor(ServiceInterface):
    def __init__(self):
        super().__init__("org.gnome.Mutter.IdleMonitor")
        self.idle_ms = 0

    @method()
    def GetIdletime(self) -> "t":  # noqa: F821 (a D-Bus signature, not a name)
        return self.idle_ms


async def main():
    monitor = IdleMonitor()
    bus = await MessageBus().connect()
    bus.export("/org/gnome/Mutter/IdleMonitor/Core", monitor)
    await bus.request_name("org.gnome.Mutter.IdleMonitor")

    def read_stdin():
        for line in sys.stdin:
            line = line.strip()
            if line.isdigit():
                monitor.idle_ms = int(line)

    threading.Thread(target=read_stdin, daemon=True).start()
    print("ready", flush=True)
    await bus.wait_for_disconnect()


if __name__ == "__main__":
    asyncio.run(main())
