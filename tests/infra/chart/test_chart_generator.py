"""The generator Job exists only where demo values switch it on, and re-runs on each upgrade."""

from __future__ import annotations

from chart_render import find, pod_spec, render_chart


def test_generator_is_off_by_default(rendered) -> None:
    for objects in rendered.values():
        assert not find(objects, "Job")


def test_demo_generator_job_writes_raw_data_and_is_replaced_on_upgrade() -> None:
    objects = render_chart({"generator": {"enabled": True, "extraArgs": ["--users", "10000"]}})
    (job,) = find(objects, "Job", "generator")
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["generate", "--out", "s3://fraudwatch/raw", "--users", "10000"]
    # A Job's pod template is immutable: as a hook it is deleted and recreated, not patched.
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert find(objects, "NetworkPolicy", "generator")
