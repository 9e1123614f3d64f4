"""SIP over UDP, sans-I/O: messages, SDP, digest authentication, transactions.

Bytes in, events and bytes out, time passed in; the asyncio layer is in
:mod:`telcoflow.telephony.sip`.
"""
