"""The simulated Bluetooth controller every device on the virtual radio runs on.

bumble's own ``Controller`` is close to what the simulation needs; this subclass fixes the
two places where it differs from real silicon in ways the daemon's code would notice:

- **LE Create Connection Cancel** is a no-op in bumble, so a central that tried to connect to
  an absent device waited forever. Here it ends the pending attempt the way the Core spec
  says (Vol 4, Part E, 7.8.13): Command Complete, then LE Connection Complete with status
  0x02 (Unknown Connection Identifier). bumble's host then raises its timeout error, which
  the bleak backend maps to ``asyncio.TimeoutError``.
- **Scan responses** carried a copy of the advertising data, and connectable advertisements
  were reported as not scannable. Here a scanner gets the advertiser's real scan response
  data, so a sensor can put its name there: a 128-bit service UUID and a name do not fit in
  one 31-byte advertisement, which is why real sensors split them the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses

from bumble import hci
from bumble.controller import Controller

_Report = hci.HCI_LE_Extended_Advertising_Report_Event.Report
_EventType = hci.HCI_LE_Extended_Advertising_Report_Event.EventType


class SimController(Controller):
    """A bumble ``Controller`` with working connection cancel and real scan responses."""

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """End a pending LE connection attempt (the stock controller ignores this)."""
        pending, self.pending_le_connection = self.pending_le_connection, None
        if pending is None:
            # Too late: the connection completed just before the cancel. A real controller
            # answers Command Disallowed, which makes bumble raise and forget a live link;
            # success lets bumble take the connection that did complete.
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)
        failed = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # The spec orders it: the Command Complete (sent by our caller) comes first.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Send to the host, with advertising reports corrected (see the module docstring)."""
        if isinstance(packet, hci.HCI_LE_Extended_Advertising_Report_Event):
            packet = hci.HCI_LE_Extended_Advertising_Report_Event(
                [self._corrected(report) for report in packet.reports]
            )
        super().send_hci_packet(packet)

    def _corrected(self, report: _Report) -> _Report:
        if report.event_type & _EventType.SCAN_RESPONSE:
            return dataclasses.replace(report, data=self._scan_response_of(report.address))
        if report.event_type & _EventType.CONNECTABLE_ADVERTISING:
            # Connectable undirected advertising (ADV_IND) is scannable too.
            scannable = report.event_type | _EventType.SCANNABLE_ADVERTISING
            return dataclasses.replace(report, event_type=scannable)
        return report

    def _scan_response_of(self, address: hci.Address) -> bytes:
        advertiser = self.link.find_le_controller(address)
        if advertiser is None:
            return b""
        for advertising_set in advertiser.advertising_sets.values():
            if advertising_set.address == address:
                return bytes(advertising_set.scan_response_data)
        legacy = advertiser.le_legacy_advertiser
        if legacy.address == address:
            return legacy.scan_response_data
        return b""
