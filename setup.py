"""Package metadata for rrdalarm."""

from setuptools import find_packages, setup

setup(
    name="rrdalarm",
    version="0.1.0",
    description="Threshold alarms over RRD files and ntopng timeseries",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPL-3.0-or-later",
    python_requires=">=3.11",
    packages=[
        *find_packages(include=["rrdalarm", "rrdalarm.*"]),
        "rrdalarm.actions",
        "rrdalarm.web",
    ],
    package_dir={
        "rrdalarm": "rrdalarm",
        "rrdalarm.actions": "actions",
        "rrdalarm.web": "web",
    },
    package_data={"rrdalarm": ["py.typed"], "rrdalarm.report": ["templates/*.html", "templates/*.js"], "rrdalarm.web": ["templates/*.html", "static/*", "static/vendor/*.md", "static/vendor/uplot/*"], "rrdalarm.store.migrations": ["script.py.mako"]},
    install_requires=[
        "rrdtool>=0.1.16",
        "SQLAlchemy>=2.0",
        "alembic>=1.13",
        "APScheduler>=3.10,<4",
        "click>=8.1",
        "tomlkit>=0.12",
        "filelock>=3.12",
        "rich>=13",
        "Jinja2>=3.1",
        "Flask>=3.0",
        "Flask-WTF>=1.2",
        "WTForms>=3.3",
        "requests>=2.31",
        "argon2-cffi>=23.1",
        "Flask-Login>=0.6",
        "waitress>=3.0",
        "prometheus-client>=0.20",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "import-linter>=2.1",
            "hypothesis>=6.100",
            "ruff>=0.6",
            "mypy>=1.10",
            "types-requests",
            "aiosmtpd>=1.4",
            "pytest-httpserver>=1.0",
            "apprise>=1.7",
            "playwright>=1.45",
            "psycopg[binary]>=3.1",  # the store's tests run on PostgreSQL too
            "axe-playwright-python>=0.1.4",
            "celery[redis]>=5.4,<6",  # the cluster's tests run real workers over a real Redis
        ],
        "apprise": ["apprise>=1.7"],
        "postgresql": ["psycopg[binary]>=3.1"],
        # Checks on workers next to each RRD tree (rrdalarm worker; [cluster] in the settings).
        "cluster": ["celery[redis]>=5.4,<6"],
    },
    entry_points={
        "console_scripts": ["rrdalarm = rrdalarm.cli.main:program"],
        "rrdalarm.actions": [
            "log = rrdalarm.actions.log:LogAction",
            "email = rrdalarm.actions.email:EmailAction",
            "webhook = rrdalarm.actions.webhook:WebhookAction",
            "script = rrdalarm.actions.script:ScriptAction",
            "syslog = rrdalarm.actions.syslog:SyslogAction",
            "apprise = rrdalarm.actions.apprise:AppriseAction",
        ],
        "rrdalarm.sources": [
            "rrd = rrdalarm.sources.rrd:RRDSource",
            "ntopng = rrdalarm.sources.ntopng:NtopngSource",
        ],
    },
)
