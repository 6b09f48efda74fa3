# The benchmark's handler: imports that a real Python function pays for (standard library modules
# that boto3/requests-style code pulls in, and the distributions Debian 12 ships: PyYAML, PyJWT,
# cryptography, Pygments), about 300 modules.
import asyncio  # noqa: F401
import decimal  # noqa: F401
import email.mime.multipart  # noqa: F401
import http.client  # noqa: F401
import json  # noqa: F401
import logging  # noqa: F401
import xml.dom.minidom  # noqa: F401

import jwt  # noqa: F401
import pygments.lexers.python  # noqa: F401
import yaml  # noqa: F401
from cryptography.hazmat.primitives import hashes  # noqa: F401


def handler(event, context):
    return {"statusCode": 200, "body": "ok"}
