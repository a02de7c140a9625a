#!/usr/bin/env python3
"""A stand-in for a desktop's notification server on the session bus, for scripts/desktop-e2e (no
GNOME Shell, KDE or dunst runs there). It owns `org.freedesktop.Notifications` and serves
`/org/freedesktop/Notifications` as the Desktop Notifications Specification (1.2) describes it:
`Notify` (out: the notification's id, from 1, growing), `CloseNotification`, `GetCapabilities`
(`actions`, `body`) and `GetServerInformation`; the signals `ActionInvoked(u id, s action_key)`
and `NotificationClosed(u id, u reason)`. Not a real server's code: what a member's click does
there is what the specification says, "default" being the action of a click on the notification
itself, offered only by a notification whose actions list it.

Each notification received is printed as one JSON line {"id", "app", "summary", "body",
"actions"}. The test writes commands on stdin, one a line:
  click ID     the member clicks notification ID: ActionInvoked(ID, "default") when it offers
               that action (else nothing, as a server does), then NotificationClosed(ID, 2)
It prints "ready" once the name is owned.
"""
import asyncio
import json
import sys
import threading

from dbus_next import Variant  # noqa: F401 (the hints' values arrive as Variants)
from dbus_next.aio import MessageBus
from dbus_next.service import ServiceInterface, method, signal


class Notifications(ServiceInterface):
    def __init__(self):
        super().__init__("org.freedesktop.Notifications")
        self.next_id = 1
        self.actions = {}

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s", body: "s",  # noqa: F821
               actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F821
        nid = replaces_id or self.next_id
        if not replaces_id:
            self.next_id += 1
        # The actions list alternates keys and labels.
        self.actions[nid] = actions[0::2]
        print(json.dumps({"id": nid, "app": app_name, "summary": summary, "body": body, "actions": actions}), flush=True)
        return nid

    @method()
    def CloseNotification(self, nid: "u"):  # noqa: F821
        if self.actions.pop(nid, None) is not None:
            self.NotificationClosed(nid, 3)  # 3: closed by a call to CloseNotification

    @method()
    def GetCapabilities(self) -> "as":  # noqa: F821
        return ["actions", "body"]

    @method()
    def GetServerInformation(self) -> "ssss":  # noqa: F821
        return ["passerelle-e2e", "passerelle", "1.0", "1.2"]

    @signal()
    def ActionInvoked(self, nid, key) -> "us":  # noqa: F821
        return [nid, key]

    @signal()
    def NotificationClosed(self, nid, reason) -> "uu":  # noqa: F821
        return [nid, reason]

    def click(self, nid):
        keys = self.actions.pop(nid, None)
        if keys is None:
            return
        if "default" in keys:
            self.ActionInvoked(nid, "default")
        self.NotificationClosed(nid, 2)  # 2: dismissed by the user


async def main():
    server = Notifications()
    bus = await MessageBus().connect()
    bus.export("/org/freedesktop/Notifications", server)
    await bus.request_name("org.freedesktop.Notifications")
    loop = asyncio.get_running_loop()

    def read_stdin():
        for line in sys.stdin:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "click" and parts[1].isdigit():
                loop.call_soon_threadsafe(server.click, int(parts[1]))

    threading.Thread(target=read_stdin, daemon=True).start()
    print("ready", flush=True)
    try:
        await bus.wait_for_disconnect()
    except EOFError:  # the session bus went away (the end of the test's dbus-run-session)
        pass


if __name__ == "__main__":
    asyncio.run(main())
