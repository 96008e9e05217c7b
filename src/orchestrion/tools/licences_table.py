"""Licences of common PyPI and npm packages, for dependencies whose lock file names none.

Compiled on `TABLE_DATE` from the packages' own published metadata (PyPI ``License-Expression`` /
``License`` / trove classifiers, npm ``license``) of their releases current at the time. The lists were
drawn from the most downloaded packages of each registry, and a package was left out whenever its
licence changed between recent major versions or could not be stated with confidence: the audit says
"unknown" for a package that is not here, and that is better than a wrong answer.

A licence can change between versions; the lock file's own licence field, when it has one, always
wins over this table, and every licence taken from here is reported as such (``licence_source``).

Keys are normalised names: PyPI as in PEP 503 (lower case, runs of ``-_.`` as ``-``), npm lower case.
"""

from __future__ import annotations

import re
from typing import Final

TABLE_DATE: Final = "2026-11-21"

PYPI: Final[dict[str, str]] = {
    "aiobotocore": "Apache-2.0", "aiofiles": "Apache-2.0", "aiohttp": "Apache-2.0",
    "aiosignal": "Apache-2.0", "aiosqlite": "MIT", "alembic": "MIT", "annotated-doc": "MIT",
    "annotated-types": "MIT", "ansible": "GPL-3.0-or-later", "ansible-core": "GPL-3.0-or-later",
    "anyio": "MIT", "argon2-cffi": "MIT", "arrow": "Apache-2.0", "asn1crypto": "MIT",
    "async-timeout": "Apache-2.0", "asyncpg": "Apache-2.0", "attrs": "MIT", "awscli": "Apache-2.0",
    "bandit": "Apache-2.0", "bcrypt": "Apache-2.0", "beautifulsoup4": "MIT", "black": "MIT",
    "blinker": "MIT", "boto3": "Apache-2.0", "botocore": "Apache-2.0", "bottle": "MIT",
    "build": "MIT", "cachetools": "MIT", "celery": "BSD-3-Clause", "certifi": "MPL-2.0",
    "cffi": "MIT-0", "cfgv": "MIT", "chardet": "LGPL-2.1-or-later", "charset-normalizer": "MIT",
    "click": "BSD-3-Clause", "colorama": "BSD-3-Clause", "contourpy": "BSD-3-Clause",
    "coverage": "Apache-2.0", "cryptography": "Apache-2.0 OR BSD-3-Clause", "cycler": "BSD-3-Clause",
    "cython": "Apache-2.0", "decorator": "BSD-2-Clause", "defusedxml": "PSF-2.0",
    "deprecated": "MIT", "dill": "BSD-3-Clause", "distlib": "PSF-2.0", "distro": "Apache-2.0",
    "django": "BSD-3-Clause", "dnspython": "ISC", "docker": "Apache-2.0", "editables": "MIT",
    "elasticsearch": "Apache-2.0", "et-xmlfile": "MIT", "exceptiongroup": "MIT", "fastapi": "MIT",
    "filelock": "Unlicense", "flake8": "MIT", "flask": "BSD-3-Clause", "fonttools": "MIT",
    "frozenlist": "Apache-2.0", "fsspec": "BSD-3-Clause", "gitdb": "BSD-3-Clause",
    "gitpython": "BSD-3-Clause", "google-api-core": "Apache-2.0",
    "google-api-python-client": "Apache-2.0", "google-auth": "Apache-2.0",
    "google-auth-httplib2": "Apache-2.0", "google-auth-oauthlib": "Apache-2.0",
    "google-cloud-aiplatform": "Apache-2.0", "google-cloud-bigquery": "Apache-2.0",
    "google-cloud-core": "Apache-2.0", "google-cloud-storage": "Apache-2.0", "google-genai": "Apache-2.0",
    "googleapis-common-protos": "Apache-2.0", "greenlet": "MIT AND PSF-2.0", "grpcio": "Apache-2.0",
    "grpcio-status": "Apache-2.0", "grpcio-tools": "Apache-2.0", "gunicorn": "MIT", "h11": "MIT",
    "hatchling": "MIT", "httpcore": "BSD-3-Clause", "httplib2": "MIT", "httptools": "MIT",
    "httpx": "BSD-3-Clause", "httpx-sse": "MIT", "huggingface-hub": "Apache-2.0",
    "hypothesis": "MPL-2.0", "identify": "MIT", "idna": "BSD-3-Clause",
    "importlib-metadata": "Apache-2.0", "iniconfig": "MIT", "ipython": "BSD-3-Clause",
    "isodate": "BSD-3-Clause", "isort": "MIT", "itsdangerous": "BSD-3-Clause", "jedi": "MIT",
    "jeepney": "MIT", "jinja2": "BSD-3-Clause", "jiter": "MIT", "jmespath": "MIT",
    "joblib": "BSD-3-Clause", "jsonschema": "MIT", "jsonschema-specifications": "MIT",
    "keyring": "MIT", "kiwisolver": "BSD-3-Clause", "kubernetes": "Apache-2.0", "langchain": "MIT",
    "lightgbm": "MIT", "litellm": "MIT", "loguru": "MIT", "lxml": "BSD-3-Clause", "mako": "MIT",
    "markdown-it-py": "MIT", "markupsafe": "BSD-3-Clause", "marshmallow": "MIT", "mccabe": "MIT",
    "mcp": "MIT", "mdurl": "MIT", "more-itertools": "MIT", "msal": "MIT", "msgpack": "Apache-2.0",
    "multidict": "Apache-2.0", "multiprocess": "BSD-3-Clause", "mutagen": "GPL-2.0-or-later",
    "mypy": "MIT", "mypy-extensions": "MIT", "mysqlclient": "GPL-2.0-or-later", "networkx": "BSD-3-Clause",
    "nltk": "Apache-2.0", "numpy": "BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0",
    "oauthlib": "BSD-3-Clause", "openai": "Apache-2.0", "openpyxl": "MIT",
    "opentelemetry-api": "Apache-2.0", "opentelemetry-exporter-otlp": "Apache-2.0",
    "opentelemetry-exporter-otlp-proto-common": "Apache-2.0",
    "opentelemetry-exporter-otlp-proto-grpc": "Apache-2.0",
    "opentelemetry-exporter-otlp-proto-http": "Apache-2.0", "opentelemetry-instrumentation": "Apache-2.0",
    "opentelemetry-proto": "Apache-2.0", "opentelemetry-sdk": "Apache-2.0",
    "opentelemetry-semantic-conventions": "Apache-2.0", "orjson": "Apache-2.0 OR MIT",
    "packaging": "Apache-2.0 OR BSD-2-Clause", "pandas": "BSD-3-Clause", "paramiko": "LGPL-2.1-or-later",
    "pathspec": "MPL-2.0", "pendulum": "MIT", "pexpect": "ISC", "pillow": "MIT-CMU", "pip": "MIT",
    "platformdirs": "MIT", "playwright": "Apache-2.0", "pluggy": "MIT", "poetry-core": "MIT",
    "pre-commit": "MIT", "prometheus-client": "Apache-2.0 AND BSD-2-Clause",
    "prompt-toolkit": "BSD-3-Clause", "propcache": "Apache-2.0", "proto-plus": "Apache-2.0",
    "protobuf": "BSD-3-Clause", "psutil": "BSD-3-Clause", "psycopg": "LGPL-3.0-only",
    "psycopg2": "LGPL-3.0-or-later", "psycopg2-binary": "LGPL-3.0-or-later", "ptyprocess": "ISC",
    "pyarrow": "Apache-2.0", "pyasn1": "BSD-2-Clause", "pyasn1-modules": "BSD-2-Clause",
    "pycodestyle": "MIT", "pycparser": "BSD-3-Clause", "pydantic": "MIT", "pydantic-core": "MIT",
    "pydantic-settings": "MIT", "pyflakes": "MIT", "pygments": "BSD-2-Clause", "pyjwt": "MIT",
    "pylint": "GPL-2.0-or-later", "pymongo": "Apache-2.0", "pymupdf": "AGPL-3.0-only",
    "pymysql": "MIT", "pynacl": "Apache-2.0", "pyopenssl": "Apache-2.0", "pyparsing": "MIT",
    "pyqt5": "GPL-3.0-only", "pyqt6": "GPL-3.0-only", "pytest": "MIT", "pytest-asyncio": "Apache-2.0",
    "pytest-cov": "MIT", "pytest-timeout": "MIT", "python-dateutil": "BSD-3-Clause",
    "python-dotenv": "BSD-3-Clause", "python-multipart": "Apache-2.0", "pytz": "MIT", "pyyaml": "MIT",
    "rapidfuzz": "MIT", "redis": "MIT", "referencing": "MIT", "regex": "Apache-2.0",
    "requests": "Apache-2.0", "requests-oauthlib": "ISC", "requests-toolbelt": "Apache-2.0",
    "rich": "MIT", "rpds-py": "MIT", "rsa": "Apache-2.0", "ruamel-yaml": "MIT", "ruff": "MIT",
    "s3fs": "BSD-3-Clause", "s3transfer": "Apache-2.0", "scikit-learn": "BSD-3-Clause",
    "scipy": "BSD-3-Clause", "scrapy": "BSD-3-Clause", "seaborn": "BSD-3-Clause",
    "secretstorage": "BSD-3-Clause", "selenium": "Apache-2.0", "sentry-sdk": "MIT",
    "setuptools": "MIT", "shellingham": "ISC", "simplejson": "MIT OR AFL-2.1", "six": "MIT",
    "smmap": "BSD-3-Clause", "sniffio": "MIT OR Apache-2.0", "sortedcontainers": "Apache-2.0",
    "soupsieve": "MIT", "spacy": "MIT", "sqlalchemy": "MIT", "sse-starlette": "BSD-3-Clause",
    "starlette": "BSD-3-Clause", "statsmodels": "BSD-3-Clause", "stevedore": "Apache-2.0",
    "structlog": "MIT OR Apache-2.0", "sympy": "BSD-3-Clause", "tabulate": "MIT",
    "tenacity": "Apache-2.0", "tensorflow": "Apache-2.0", "textual": "MIT",
    "threadpoolctl": "BSD-3-Clause", "tiktoken": "MIT", "tokenizers": "Apache-2.0", "toml": "MIT",
    "tomli": "MIT", "tomlkit": "MIT", "torch": "BSD-3-Clause", "tornado": "Apache-2.0",
    "tqdm": "MPL-2.0 AND MIT", "traitlets": "BSD-3-Clause", "transformers": "Apache-2.0",
    "trove-classifiers": "Apache-2.0", "trustme": "MIT OR Apache-2.0", "twisted": "MIT", "typer": "MIT",
    "types-pyyaml": "Apache-2.0", "types-requests": "Apache-2.0", "typing-extensions": "PSF-2.0",
    "typing-inspection": "MIT", "tzdata": "Apache-2.0", "tzlocal": "MIT", "ultralytics": "AGPL-3.0-only",
    "uritemplate": "BSD-3-Clause OR Apache-2.0", "urllib3": "MIT", "uv": "MIT OR Apache-2.0",
    "uvicorn": "BSD-3-Clause", "uvloop": "MIT OR Apache-2.0", "virtualenv": "MIT", "waitress": "ZPL-2.1",
    "watchfiles": "MIT", "wcwidth": "MIT", "websocket-client": "Apache-2.0", "websockets": "BSD-3-Clause",
    "werkzeug": "BSD-3-Clause", "wheel": "MIT", "wrapt": "BSD-2-Clause", "xgboost": "Apache-2.0",
    "yarl": "Apache-2.0", "zipp": "MIT", "zstandard": "BSD-3-Clause",
}  # fmt: skip

NPM: Final[dict[str, str]] = {
    "@babel/code-frame": "MIT", "@babel/compat-data": "MIT", "@babel/core": "MIT",
    "@babel/generator": "MIT", "@babel/helper-compilation-targets": "MIT",
    "@babel/helper-module-imports": "MIT", "@babel/helper-module-transforms": "MIT",
    "@babel/helper-plugin-utils": "MIT", "@babel/helper-string-parser": "MIT",
    "@babel/helper-validator-identifier": "MIT", "@babel/helper-validator-option": "MIT",
    "@babel/helpers": "MIT", "@babel/parser": "MIT", "@babel/runtime": "MIT", "@babel/template": "MIT",
    "@babel/traverse": "MIT", "@babel/types": "MIT", "@jest/types": "MIT",
    "@jridgewell/gen-mapping": "MIT", "@jridgewell/resolve-uri": "MIT",
    "@jridgewell/sourcemap-codec": "MIT", "@jridgewell/trace-mapping": "MIT",
    "@sinclair/typebox": "MIT", "@testing-library/react": "MIT", "@types/estree": "MIT",
    "@types/node": "MIT", "@types/yargs": "MIT", "@wordpress/components": "GPL-2.0-or-later",
    "@wordpress/data": "GPL-2.0-or-later", "@wordpress/element": "GPL-2.0-or-later",
    "@wordpress/i18n": "GPL-2.0-or-later", "acorn": "MIT", "agent-base": "MIT", "ajv": "MIT",
    "ansi-escapes": "MIT", "ansi-regex": "MIT", "ansi-styles": "MIT", "arg": "MIT", "async": "MIT",
    "asynckit": "MIT", "axios": "MIT", "balanced-match": "MIT", "bluebird": "MIT", "body-parser": "MIT",
    "bootstrap": "MIT", "brace-expansion": "MIT", "braces": "MIT", "browserslist": "MIT", "buffer": "MIT",
    "bytes": "MIT", "callsites": "MIT", "camelcase": "MIT", "caniuse-lite": "CC-BY-4.0", "chai": "MIT",
    "chalk": "MIT", "chart.js": "MIT", "cheerio": "MIT", "chokidar": "MIT", "ci-info": "MIT",
    "classnames": "MIT", "cliui": "ISC", "color-convert": "MIT", "color-name": "MIT",
    "combined-stream": "MIT", "commander": "MIT", "concat-map": "MIT", "content-disposition": "MIT",
    "convert-source-map": "MIT", "cookie": "MIT", "cookie-parser": "MIT", "core-js": "MIT",
    "cors": "MIT", "cosmiconfig": "MIT", "cross-spawn": "MIT", "d3": "ISC", "date-fns": "MIT",
    "dayjs": "MIT", "debug": "MIT", "delayed-stream": "MIT", "depd": "MIT", "doctrine": "Apache-2.0",
    "dotenv": "BSD-2-Clause", "eastasianwidth": "MIT", "ejs": "Apache-2.0",
    "electron-to-chromium": "ISC", "emoji-regex": "MIT", "encodeurl": "MIT", "entities": "BSD-2-Clause",
    "es-errors": "MIT", "esbuild": "MIT", "escalade": "MIT", "escape-string-regexp": "MIT",
    "eslint": "MIT", "eslint-scope": "BSD-2-Clause", "eslint-visitor-keys": "Apache-2.0",
    "espree": "BSD-2-Clause", "estraverse": "BSD-2-Clause", "execa": "MIT", "express": "MIT",
    "fast-deep-equal": "MIT", "fast-glob": "MIT", "file-entry-cache": "MIT", "fill-range": "MIT",
    "find-up": "MIT", "flat-cache": "MIT", "form-data": "MIT", "fs-extra": "MIT",
    "function-bind": "MIT", "get-intrinsic": "MIT", "get-stream": "MIT", "glob-parent": "ISC",
    "globals": "MIT", "gopd": "MIT", "graceful-fs": "ISC", "graphql": "MIT", "handlebars": "MIT",
    "has-flag": "MIT", "has-symbols": "MIT", "hasown": "MIT", "helmet": "MIT",
    "highlight.js": "BSD-3-Clause", "http-errors": "MIT", "http-proxy-agent": "MIT",
    "https-proxy-agent": "MIT", "human-signals": "Apache-2.0", "husky": "MIT", "iconv-lite": "MIT",
    "ignore": "MIT", "immer": "MIT", "inherits": "ISC", "ini": "ISC", "ioredis": "MIT",
    "is-arrayish": "MIT", "is-core-module": "MIT", "is-docker": "MIT", "is-extglob": "MIT",
    "is-fullwidth-code-point": "MIT", "is-glob": "MIT", "is-number": "MIT", "is-stream": "MIT",
    "is-wsl": "MIT", "isarray": "MIT", "jest": "MIT", "jest-util": "MIT", "jest-worker": "MIT",
    "jquery": "MIT", "js-tokens": "MIT", "js-yaml": "MIT", "jsesc": "MIT", "json-schema-traverse": "MIT",
    "json5": "MIT", "jsonfile": "MIT", "jsonwebtoken": "MIT", "kind-of": "MIT", "knex": "MIT",
    "less": "Apache-2.0", "lint-staged": "MIT", "locate-path": "MIT", "lodash": "MIT", "lodash-es": "MIT",
    "magic-string": "MIT", "make-dir": "MIT", "marked": "MIT", "micromatch": "MIT", "mime": "MIT",
    "mime-db": "MIT", "mime-types": "MIT", "mimic-fn": "MIT", "minimist": "MIT", "mkdirp": "MIT",
    "mocha": "MIT", "moment": "MIT", "mongodb": "Apache-2.0", "mongoose": "MIT", "morgan": "MIT",
    "ms": "MIT", "multer": "MIT", "mysql": "MIT", "mysql2": "MIT", "nanoid": "MIT", "negotiator": "MIT",
    "next": "MIT", "nock": "MIT", "node-fetch": "MIT", "node-releases": "MIT", "nodemon": "MIT",
    "normalize-path": "MIT", "npm-run-path": "MIT", "object-assign": "MIT", "object-inspect": "MIT",
    "once": "ISC", "onetime": "MIT", "p-limit": "MIT", "p-locate": "MIT", "parse-json": "MIT",
    "parse5": "MIT", "passport": "MIT", "path-exists": "MIT", "path-key": "MIT", "path-to-regexp": "MIT",
    "pg": "MIT", "picocolors": "ISC", "picomatch": "MIT", "pify": "MIT", "pino": "MIT",
    "playwright": "Apache-2.0", "postcss": "MIT", "postcss-selector-parser": "MIT", "prettier": "MIT",
    "pretty-format": "MIT", "prop-types": "MIT", "pug": "MIT", "punycode": "MIT",
    "puppeteer": "Apache-2.0", "qs": "BSD-3-Clause", "ramda": "MIT", "react": "MIT", "react-dom": "MIT",
    "react-is": "MIT", "react-redux": "MIT", "readable-stream": "MIT", "readdirp": "MIT", "redis": "MIT",
    "redux": "MIT", "request": "Apache-2.0", "require-from-string": "MIT", "resolve": "MIT",
    "resolve-from": "MIT", "rollup": "MIT", "rxjs": "Apache-2.0", "safe-buffer": "MIT",
    "safer-buffer": "MIT", "sass": "MIT", "scheduler": "MIT", "schema-utils": "MIT", "semver": "ISC",
    "sequelize": "MIT", "sharp": "Apache-2.0", "shebang-command": "MIT", "shebang-regex": "MIT",
    "signal-exit": "ISC", "sinon": "BSD-3-Clause", "slash": "MIT", "socket.io": "MIT",
    "source-map": "BSD-3-Clause", "source-map-js": "BSD-3-Clause", "source-map-support": "MIT",
    "statuses": "MIT", "string-width": "MIT", "string_decoder": "MIT", "strip-ansi": "MIT",
    "strip-bom": "MIT", "strip-final-newline": "MIT", "strip-json-comments": "MIT",
    "styled-components": "MIT", "superagent": "MIT", "supertest": "MIT", "supports-color": "MIT",
    "svelte": "MIT", "tailwindcss": "MIT", "three": "MIT", "to-regex-range": "MIT", "tr46": "MIT",
    "ts-node": "MIT", "tslib": "0BSD", "type-fest": "(MIT OR CC0-1.0)", "typescript": "Apache-2.0",
    "underscore": "MIT", "undici-types": "MIT", "universalify": "MIT", "update-browserslist-db": "MIT",
    "uri-js": "BSD-2-Clause", "util-deprecate": "MIT", "uuid": "MIT", "vite": "MIT", "vitest": "MIT",
    "vue": "MIT", "webidl-conversions": "BSD-2-Clause", "webpack": "MIT", "whatwg-url": "MIT",
    "which": "ISC", "winston": "MIT", "wrap-ansi": "MIT", "wrappy": "ISC", "ws": "MIT", "y18n": "ISC",
    "yaml": "ISC", "yargs": "MIT", "yargs-parser": "ISC", "yocto-queue": "MIT", "zod": "MIT",
}  # fmt: skip

_TABLES: Final = {"pypi": PYPI, "npm": NPM}
_PEP503 = re.compile(r"[-_.]+")


def normalise_name(ecosystem: str, name: str) -> str:
    """The table key of a package name in `ecosystem` (PEP 503 for PyPI, lower case elsewhere)."""
    if ecosystem == "pypi":
        return _PEP503.sub("-", name).lower()
    return name.lower() if ecosystem != "go" else name


def known_licence(ecosystem: str, name: str) -> str | None:
    """The table's SPDX licence for a package, or None when the table does not know it."""
    table = _TABLES.get(ecosystem)
    return table.get(normalise_name(ecosystem, name)) if table is not None else None
