"""add_department writes the department's work-pool.yaml, all-or-nothing; remove_department
takes it away with the folder."""

from airnub_platform import work_pools
from airnub_platform.testing import OWNED


def test_a_new_department_gets_a_work_pool_file_of_the_defaults(new_copy, run_generator):
    root = new_copy("pooled")
    done = run_generator(root, "add_department", "--id", "pooled", "--no-lock", *OWNED)
    assert done.returncode == 0, done.stderr
    path = root / "packages" / "dept_pooled" / work_pools.FILE_NAME
    # the file says what the defaults are: reading it changes nothing
    assert work_pools.load(path) == work_pools.WorkPoolSettings()
    text = path.read_text()
    assert "airnub deploy dept_pooled --pool-type kubernetes" in text
    assert "# service_account_name: dept-pooled" in text
    assert "REGISTRY/dept-pooled:TAG" in text
    done = run_generator(root, "remove_department", "--id", "pooled", "--no-lock")
    assert done.returncode == 0, done.stderr
    assert not path.parent.exists()


def test_a_dry_run_lists_it_and_a_failed_add_leaves_it_out(new_copy, run_generator, tree_state):
    root = new_copy("pool-doomed")
    done = run_generator(root, "add_department", "--id", "listed", "--dry-run", *OWNED)
    assert done.returncode == 0, done.stderr
    assert f"create packages/dept_listed/{work_pools.FILE_NAME}" in done.stdout
    before = tree_state(root)
    env = {"PATH": "/nonexistent", "HOME": str(root)}  # no uv: `uv lock` fails after writing
    done = run_generator(root, "add_department", "--id", "doomed", *OWNED, env=env)
    assert done.returncode == 1
    assert not (root / "packages" / "dept_doomed").exists()
    assert tree_state(root) == before
