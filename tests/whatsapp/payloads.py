"""Meta-shaped webhook notifications, as the Cloud API's webhook reference shows them."""

from __future__ import annotations

import json
from typing import Any

PHONE_NUMBER_ID = "106540352242922"
DISPLAY = "15550783881"
BUSINESS = "+15550783881"
USER_WA_ID = "16505551234"
USER = "+16505551234"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
SENT_WAMID = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


def notification(value: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398",
                       "changes": [{"value": value, "field": field}]}]}


def value(**parts: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"messaging_product": "whatsapp",
                           "metadata": {"display_phone_number": DISPLAY,
                                        "phone_number_id": PHONE_NUMBER_ID}}
    out.update(parts)
    return out


def message(kind: str, body: Any, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"from": USER_WA_ID, "id": WAMID, "timestamp": "1739321024",
                           "type": kind}
    if body is not None:
        obj[kind] = body
    obj.update(extra)
    return obj


def inbound(kind: str, body: Any, **extra: Any) -> bytes:
    return json.dumps(notification(value(
        contacts=[{"profile": {"name": "Sheena Nelson"}, "wa_id": USER_WA_ID}],
        messages=[message(kind, body, **extra)]))).encode()


def status(state: str, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": SENT_WAMID, "status": state, "timestamp": "1739321025",
                           "recipient_id": USER_WA_ID}
    obj.update(extra)
    return obj


def statuses(*objs: dict[str, Any]) -> bytes:
    return json.dumps(notification(value(statuses=list(objs)))).encode()


#: one realistic typed object per inbound message type
INBOUND_BODIES: dict[str, Any] = {
    "text": {"body": "Does it come in another color?"},
    "image": {"caption": "the label", "mime_type": "image/jpeg",
              "sha256": "fDY6ZXE8h5ZV2pM2nxzHp/6mTb4qzx1v3Rzv4oI6fEU=", "id": "1003383421387256"},
    "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "abc=", "id": "1003383421387257",
              "voice": True},
    "video": {"mime_type": "video/mp4", "sha256": "abd=", "id": "1003383421387258"},
    "document": {"caption": "invoice", "filename": "invoice.pdf", "mime_type": "application/pdf",
                 "sha256": "abe=", "id": "1003383421387259"},
    "sticker": {"mime_type": "image/webp", "sha256": "abf=", "id": "1003383421387260",
                "animated": False},
    "location": {"latitude": 37.483307, "longitude": 122.148981, "name": "Main Street Beach",
                 "address": "Main Street Beach, Santa Cruz, CA"},
    "interactive": {"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}},
    "button": {"payload": "STOP", "text": "Stop promotions"},
    "reaction": {"message_id": SENT_WAMID, "emoji": "\U0001F600"},
}
CONTACTS = [{"name": {"formatted_name": "Barbara J. Johnson", "first_name": "Barbara"},
             "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME",
                         "wa_id": "19405551234"}]}]

# Secrets the tests configure: none may ever appear in a log line (conftest.py checks).
APP_SECRET = "app-secret-0123456789abcdef"
VERIFY_TOKEN = "verify-token-zyx987"
ACCESS_TOKEN = "EAAG-access-token-very-secret"
E2E_APP_SECRET = "e2e-app-secret-5f3a"
E2E_VERIFY_TOKEN = "e2e-verify-token-91c"
E2E_ACCESS_TOKEN = "e2e-access-token-77d0"
SECRETS = (APP_SECRET, VERIFY_TOKEN, ACCESS_TOKEN, E2E_APP_SECRET, E2E_VERIFY_TOKEN,
           E2E_ACCESS_TOKEN)
