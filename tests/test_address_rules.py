"""Address rules of the URL-list collector, against the real HTTP server on 127.0.0.1.

Link-local and cloud-metadata addresses stay closed under every option; loopback opens only through an
explicit network (``--allowed-networks 127.0.0.0/8``); ``--allow-private-addresses`` opens private ranges
only.
"""

from __future__ import annotations

import csv
import ipaddress
import socket
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from httpserver import CaseServer, small_cfp_jpegs
from typer.testing import CliRunner

from curate.config import build_config
from curate.download.safety import AddressPolicy
from curate.errors import ConfigError
from curate.stage import local_context
from curate.stages.download import DownloadConfig, DownloadStage

FAST = {"connect_timeout_seconds": 1.0, "read_timeout_seconds": 0.5, "deadline_seconds": 1.5}
METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",
    "http://[fe80::1]/x.jpg",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "http://[2002:a9fe:a9fe::1]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
]
OPTION_SETS = {
    "defaults": {},
    "allow-private": {"allow_private_addresses": True},
    "allow-everything": {"allowed_networks": ["0.0.0.0/0", "::/0"]},
    "all-options": {"allow_private_addresses": True, "allowed_networks": ["0.0.0.0/0", "::/0", "10.0.0.0/8"]},
}


@pytest.fixture(scope="module")
def images(data_dir: Path) -> list[bytes]:
    return small_cfp_jpegs(data_dir, 3)


@pytest.fixture
def server(images: list[bytes]):
    with CaseServer(images) as running:
        yield running


@pytest.fixture
def connections(monkeypatch) -> list[tuple]:
    """Every TCP connection the HTTP client opens (a spy: the real connection is still made)."""
    opened: list[tuple] = []
    real = socket.create_connection

    def spy(address, *args, **kwargs):
        opened.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return opened


def write_csv(path: Path, urls: list[str]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity", "url"])
        writer.writerows(["Ann Lee", url] for url in urls)
    return path


def collect(workdir: Path, source: Path, **settings) -> dict[str, dict]:
    """Run the download stage on one shard; rows by source URL."""
    stage = DownloadStage(build_config(DownloadConfig, {"source": source, **FAST, **settings}))
    (table,) = stage.plan(workdir, 1).values()
    out: pa.Table = stage.run_shard(table, local_context(workdir, "collect"))
    return {row["source"]: row for row in out.to_pylist()}


@pytest.mark.parametrize("options", sorted(OPTION_SETS))
def test_metadata_addresses_refused_under_every_option(tmp_path, connections, options):
    source = write_csv(tmp_path / "urls.csv", METADATA_URLS)
    rows = collect(tmp_path / "work", source, **OPTION_SETS[options])
    for url in METADATA_URLS:
        assert rows[url]["status"] == "failed_download", url
        assert rows[url]["reason"].endswith("(never allowed)"), rows[url]["reason"]
    assert connections == []


@pytest.mark.parametrize("options", sorted(OPTION_SETS))
def test_redirects_to_link_local_refused(tmp_path, server, connections, options):
    settings = dict(OPTION_SETS[options])
    settings["allowed_networks"] = [*settings.get("allowed_networks", []), "127.0.0.0/8"]
    targets = [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::a9fe:a9fe]/",
        "http://[fd00:ec2::254]/",
    ]
    urls = [server.url(f"/redirect?to={target}") for target in targets]
    urls.append(server.url(f"/redirect?to=http://127.0.0.1:{server.port}/img/1.jpg"))
    rows = collect(tmp_path / "work", write_csv(tmp_path / "urls.csv", urls), **settings)
    for url in urls[:-1]:
        assert rows[url]["status"] == "failed_download"
        assert "address" in rows[url]["reason"] and rows[url]["reason"].endswith("(never allowed)")
    assert rows[urls[-1]]["status"] == "ok"  # the redirect hop to an allowed address is followed
    assert {address[0] for address in connections} == {"127.0.0.1"}


def test_networks_inside_metadata_space_are_a_config_error(tmp_path):
    source = write_csv(tmp_path / "urls.csv", [])
    for network in ("169.254.169.254/32", "169.254.0.0/16", "fe80::/64", "fd00:ec2::254/128"):
        with pytest.raises(ConfigError, match="never allowed"):
            build_config(DownloadConfig, {"source": source, "allowed_networks": [network]})


def test_allow_private_opens_private_ranges_only():
    policy = AddressPolicy.from_strings(True, [])
    for opened in ("10.1.2.3", "172.16.0.9", "192.168.1.1", "fd12:3456::1", "::ffff:10.0.0.1", "8.8.8.8"):
        assert policy.problem(ipaddress.ip_address(opened)) is None, opened
    for closed, kind in [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("100.100.100.200", "cloud-metadata"),
        ("100.64.0.1", "non-public"),
        ("224.0.0.1", "multicast"),
    ]:
        assert policy.problem(ipaddress.ip_address(closed)).startswith(f"blocked {kind} address"), closed


def test_cli_loopback_mirror_opens_only_with_allow_network(tmp_path, server, images):
    from curate.cli import app

    source = write_csv(tmp_path / "urls.csv", [server.url(f"/img/{i}.jpg") for i in range(3)])
    workdir = tmp_path / "w"
    base = ["-w", str(workdir), "--workers", "1", "--shards", "1", "collect", str(source), "--overwrite"]
    private = ["--allow-private-addresses", "--allowed-networks", "10.0.0.0/8"]
    refused = CliRunner().invoke(app, [*base, *private])
    assert refused.exit_code == 0, refused.output
    assert set(pd.read_parquet(workdir / "collect").reason) == {"blocked loopback address 127.0.0.1"}
    assert server.hit_count() == 0
    networks = ["--allowed-networks", "10.0.0.0/8", "--allowed-networks", "127.0.0.0/8"]
    result = CliRunner().invoke(app, [*base, *networks])
    assert result.exit_code == 0, result.output
    assert list(pd.read_parquet(workdir / "collect").status) == ["ok"] * 3
    metadata = CliRunner().invoke(app, [*base, "--allowed-networks", "169.254.0.0/16"])
    assert metadata.exit_code == 1
    assert "never allowed" in metadata.output and len(metadata.output.strip().splitlines()) == 1
