"""POS import: the real samples in ../shared/data/pos through the documented mapping, the native
CSV/JSON schema, idempotent re-import into InfluxDB and DuckDB, and clear errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from footfall.analytics import DuckDBStore, InfluxStore, PosError, parse_mapping, pos_points, read_pos_file
from footfall.contracts.influx import InfluxClient
from footfall.contracts.measurements import POS_TRANSACTION, datetime_to_ns

BAKERY_MAPPING = [
    "store_value=bakery",
    "ts=Date+Time",
    "ts_format=%d-%m-%Y %H:%M:%S",
    "timezone=Europe/London",
    "transaction_id=Transaction",
    "amount=",
    "items=Item",
]
SUPERMARKET_MAPPING = [
    "store=Branch",
    "transaction_id=Invoice ID",
    "amount=Total",
    "items=Quantity",
    "ts=Date+Time",
    "ts_format=%m/%d/%Y %H:%M",
    "timezone=Asia/Yangon",
]
ALL_TIME = (0, 2**62)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def pos_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "pos"


def test_bakery_sample_maps_line_items_to_transactions(pos_dir: Path) -> None:
    rows = _csv_rows(pos_dir / "BreadBasket_DMS.csv")
    txs = read_pos_file(pos_dir / "BreadBasket_DMS.csv", "csv", parse_mapping(BAKERY_MAPPING))
    assert len(txs) == len({r["Transaction"] for r in rows})
    assert sum(t.items or 0 for t in txs) == len(rows)  # one item per line-item row
    assert all(t.amount is None for t in txs)  # the file has no prices: revenue stays absent
    first = next(t for t in txs if t.transaction_id == "1")
    # 30-10-2016 09:58:11 in London is GMT (BST ended that morning)
    assert first.ts_ns == datetime_to_ns(datetime(2016, 10, 30, 9, 58, 11, tzinfo=UTC))


def test_supermarket_sample_keeps_amounts_and_time_zone(pos_dir: Path) -> None:
    rows = _csv_rows(pos_dir / "supermarket_sales.csv")
    txs = read_pos_file(pos_dir / "supermarket_sales.csv", "csv", parse_mapping(SUPERMARKET_MAPPING))
    assert len(txs) == len(rows) == 1000
    for branch in ("A", "B", "C"):
        expected = sum(Decimal(r["Total"]) for r in rows if r["Branch"] == branch)
        got = sum(t.amount or 0 for t in txs if t.store == branch)
        assert got == pytest.approx(float(expected), rel=1e-12)
    first = next(t for t in txs if t.transaction_id == "750-67-8428")
    # 1/5/2019 13:08 in Yangon (+06:30) = 06:38 UTC
    assert first.ts_ns == datetime_to_ns(datetime(2019, 1, 5, 6, 38, tzinfo=UTC))
    assert (first.amount, first.items) == (548.9715, 7)


@pytest.mark.parametrize(
    "target",
    [pytest.param("duckdb"), pytest.param("influx", marks=pytest.mark.servers)],
)
def test_reimport_changes_nothing(
    target: str, pos_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if target == "duckdb":
        store = DuckDBStore(tmp_path / "pos.duckdb")

        def count() -> int:
            return store.con.execute("SELECT count(*) FROM pos_transaction").fetchone()[0]
    else:
        client: InfluxClient = request.getfixturevalue("influx_db")
        store = InfluxStore(client)  # type: ignore[assignment]

        def count() -> int:
            return client.query("SELECT count(transaction_id) FROM pos_transaction")[0].values[0][1]

    txs = read_pos_file(pos_dir / "supermarket_sales.csv", "csv", parse_mapping(SUPERMARKET_MAPPING))
    store.write_points(pos_points(txs))
    first = store.read_points(POS_TRANSACTION, *ALL_TIME)
    store.write_points(
        pos_points(
            read_pos_file(pos_dir / "supermarket_sales.csv", "csv", parse_mapping(SUPERMARKET_MAPPING))
        )
    )
    assert count() == 1000
    assert store.read_points(POS_TRANSACTION, *ALL_TIME) == first
    assert sum(p.fields["amount"] for p in first) == pytest.approx(sum(t.amount or 0 for t in txs))


def test_native_json_with_item_lists_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "pos.json"
    path.write_text(
        json.dumps(
            [
                {
                    "store": "s1",
                    "ts": "2026-10-05T10:00:00+02:00",
                    "transaction_id": "t1",
                    "amount": 12.5,
                    "items": [{"sku": "a", "qty": 2}, {"sku": "b"}],
                },
                {
                    "store": "s1",
                    "ts": "2026-10-05T08:00:30Z",
                    "transaction_id": "t1",
                    "amount": "0.25",
                    "items": 1,
                },
                {"store": "s2", "ts": "2026-10-05T09:00:00+00:00", "transaction_id": "t1", "amount": 3},
            ]
        )
    )
    txs = {(t.store, t.transaction_id): t for t in read_pos_file(path, "json")}
    assert txs[("s1", "t1")].amount == 12.75  # line items of one transaction are summed
    assert txs[("s1", "t1")].items == 4
    assert txs[("s1", "t1")].ts_ns == datetime_to_ns(datetime(2026, 10, 5, 8, 0, tzinfo=UTC))  # earliest
    assert txs[("s2", "t1")].amount == 3.0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("s1,2026-10-05T10:00:00,t1,5", "line 3: time '2026-10-05T10:00:00' has no UTC offset"),
        ("s1,2026-10-05T10:00:00Z,t1,five", "line 3: amount 'five' is not a number"),
        ("s 1,2026-10-05T10:00:00Z,t1,5", "line 3: store 's 1' is not a valid name"),
        ("s1,yesterday,t1,5", "line 3: time 'yesterday' does not match ISO 8601"),
        ("s1,2026-10-05T10:00:00Z,,5", "line 3: empty 'transaction_id'"),
    ],
)
def test_bad_rows_are_named_and_nothing_is_imported(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "pos.csv"
    path.write_text(f"store,ts,transaction_id,amount\ns1,2026-10-05T09:00:00Z,t0,1\n{row}\n")
    with pytest.raises(PosError) as err:
        read_pos_file(path, "csv")
    assert f"{path}: {message}" in str(err.value)
    assert "nothing was imported" in str(err.value)


def test_cli_pos_import_on_duckdb_and_bad_file(pos_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    cmd = [
        sys.executable,
        "-m",
        "footfall",
        "pos",
        "import",
        str(pos_dir / "BreadBasket_DMS.csv"),
        "--db",
        str(db),
    ]
    for item in BAKERY_MAPPING:
        cmd += ["--mapping", item]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported 9531 transactions for 1 store(s): bakery" in done.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0
    with DuckDBStore(db) as store:
        assert store.con.execute("SELECT count(*), count(amount) FROM pos_transaction").fetchone() == (
            9531,
            0,
        )
    bad = subprocess.run([*cmd[:-2], "--mapping", "colour=red"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "--mapping: colour: unknown key" in bad.stderr


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ("3", 3),
        (" 12 ", 12),
        ("-1", -1),  # a return
        ("7.0", 7),  # how spreadsheets write an integer column
        ("", None),
        ("Bread", 1),  # any other text is an item name: one item
        ("Nan", 1),  # words that float() would read as numbers are names too
        ("NaN", 1),
        ("Inf", 1),
        ("Infinity", 1),
        ("2.7", "items '2.7' is not a whole number of items"),
        ("1e3", "items '1e3' is not a whole number of items"),
        ("5000000", "items '5000000' is out of range"),
    ],
)
def test_csv_items_are_counts_or_names_and_bad_counts_are_named(tmp_path: Path, items: str, expected) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "pos.csv"
    path.write_text(f"store,ts,transaction_id,amount,items\ns1,2026-10-05T09:00:00Z,t1,3.50,{items}\n")
    if isinstance(expected, str):
        with pytest.raises(PosError) as err:
            read_pos_file(path, "csv")
        assert f"{path}: line 2: {expected}" in str(err.value)
        assert "nothing was imported" in str(err.value)
    else:
        assert [t.items for t in read_pos_file(path, "csv")] == [expected]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (4, 4),
        (4.0, 4),
        ([{"sku": "a", "qty": 2}, {"sku": "b"}, "c"], 4),  # a {qty} object its quantity, others one
        ([{"qty": "3"}], 3),
        ("Nan", 1),
        (None, None),
        ([{"sku": "a", "qty": 2}, {"sku": "b", "qty": None}], "items[1].qty null is not a whole number"),
        ([{"qty": 1.5}], "items[0].qty 1.5 is not a whole number"),
        ([{"qty": "two"}], "items[0].qty 'two' is not a whole number"),
        ([{"qty": True}], "items[0].qty true is not a whole number"),
        (2.5, "items 2.5 is not a whole number"),
        (float("nan"), "items NaN is not a whole number"),
        (float("inf"), "items Infinity is not a whole number"),
        (True, "items true is not a whole number"),
        ({"qty": 2}, 'items {"qty": 2} is not a whole number'),
    ],
)
def test_json_items_are_counts_and_bad_values_are_named(tmp_path: Path, items, expected) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "pos.json"
    record = {"store": "s1", "ts": "2026-10-05T10:00:00+02:00", "transaction_id": "1", "amount": 12.5}
    path.write_text(json.dumps([{**record, "items": items}]))
    if isinstance(expected, str):
        with pytest.raises(PosError) as err:
            read_pos_file(path, "json")
        assert f"{path}: record 1: {expected}" in str(err.value)
    else:
        assert [t.items for t in read_pos_file(path, "json")] == [expected]
