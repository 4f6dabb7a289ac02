# The two commands of the README, and a few for developers.
.PHONY: demo test lint bench clean

demo:            ## set up, create demo data, serve on http://127.0.0.1:8000
	scripts/demo.sh

test:            ## set up, then the whole suite: SQLite, PostgreSQL, browser
	scripts/test.sh

lint:            ## ruff and mypy
	scripts/bootstrap.sh
	.venv/bin/ruff check src tests bench
	.venv/bin/ruff format --check src tests bench
	.venv/bin/mypy

bench:           ## the benchmarks of docs/performance.md
	scripts/bootstrap.sh
	.venv/bin/python bench/ingest.py --subjects 100000
	.venv/bin/python bench/lookup.py --subjects 100000
	.venv/bin/python bench/erase.py --subjects 100000
	.venv/bin/python bench/gate.py --subjects 1000000
	.venv/bin/python bench/requests.py

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache .hypothesis
