"""A forkserver that dies while starting a figure worker (killed, out of memory) is started again;
when it dies twice the figure fails with one line saying why, not a traceback (runner.forked,
jobs.Worker). Each case runs in a fresh Python, so it gets a forkserver of its own whose preload
is a module that kills it the first N times."""
import json
import os
import subprocess
import sys
from pathlib import Path

from figures_src.runner.paths import REPO_ROOT

DIES_IN_FORKSERVER = '''
import os
from pathlib import Path
deaths = Path(__file__).with_name("deaths")
count = int(deaths.read_text()) if deaths.exists() else 0
if count < int(os.environ["FORKSERVER_DEATHS"]):
    deaths.write_text(str(count + 1))
    os._exit(9)
'''

START_ONE_WORKER = '''
import json, sys
from pathlib import Path
from figures_src.runner import forked
from figures_src.runner.jobs import Worker
forked.PRELOAD = ["dies_in_forkserver"]
folder = Path(sys.argv[1])
job = {"result_file": str(folder / "job.result.json"), "device": "cpu"}   # a job that fails: it names no script
worker = Worker(spec=None, inputs={}, staging=folder / "job", job=job)
worker.start()
if worker.process:
    worker.process.wait()      # the runner's end of its pipe stays open: closing it would end the worker
    worker.process.close()
print(json.dumps({"finished": worker.finished(), "outcome": worker.outcome()}))
'''


def start_one_worker(tmp_path: Path, deaths: int) -> dict:
    (tmp_path / "dies_in_forkserver.py").write_text(DIES_IN_FORKSERVER)
    environment = {**os.environ, "FORKSERVER_DEATHS": str(deaths),
                   "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}
    done = subprocess.run([sys.executable, "-c", START_ONE_WORKER, str(tmp_path)], cwd=REPO_ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_forkserver_killed_while_starting_is_started_again(tmp_path):
    report = start_one_worker(tmp_path, deaths=1)
    assert (tmp_path / "deaths").read_text() == "1"
    # the worker ran: it wrote its job's failure report (the job names no script) to the result file
    assert report["finished"]
    assert (tmp_path / "job.result.json").exists()
    assert "could not start" not in report["outcome"]["error"]


def test_a_forkserver_that_keeps_dying_fails_the_figure_with_one_line(tmp_path):
    report = start_one_worker(tmp_path, deaths=5)
    assert (tmp_path / "deaths").read_text() == "2"        # tried twice, then gave up
    assert report["finished"]
    assert not (tmp_path / "job.result.json").exists()
    error = report["outcome"]["error"]
    assert error.startswith("could not start a figure worker: the process that forks them failed twice")
    assert "EOFError" in error and "memory" in error and "\n" not in error
    assert report["outcome"]["frames"] == []
