"""Generators train under a tf.distribute strategy entered by the caller (``with strategy.scope()``).

Logical devices must be configured before TensorFlow starts, so the run happens in a fresh
interpreter with two logical CPU devices under ``MirroredStrategy``.
"""
import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from sklearn.datasets import load_digits
    from synthaug import VAE, Flow

    d = load_digits()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {"replicas": strategy.num_replicas_in_sync}
    models = {
        "vae": (VAE(hidden_units=(32,), latent_dim=4, epochs=3, n_importance=10, validation_fraction=0.0,
                   random_state=0), d.images[:400]),
        "flow": (Flow(n_layers=2, hidden_units=(16,), epochs=3, validation_fraction=0.0, random_state=0), d.data[:400]),
    }
    for name, (model, X) in models.items():
        with strategy.scope():
            model.fit(X, d.target[:400])
        samples, labels = model.generate(20, y=3, random_state=0)
        out[name] = {
            "variables": sorted({type(v.value).__name__ for v in model.model_.trainable_variables}),
            "loss": model.history_["loss"],
            "shape": list(samples.shape), "labels": sorted(set(labels.tolist())),
            "in_range": bool(samples.min() >= 0 and samples.max() <= 16),
            "finite_scores": bool(np.isfinite(model.score_samples(X[:10], d.target[:10])).all()),
        }
    print("RESULT" + json.dumps(out))
""")


def test_fit_under_mirrored_strategy_on_two_devices():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
    assert run.returncode == 0 and lines, run.stderr[-3000:]
    out = json.loads(lines[0][len("RESULT"):])
    assert out["replicas"] == 2
    for name, shape in (("vae", [20, 8, 8]), ("flow", [20, 64])):
        result = out[name]
        assert result["variables"] == ["MirroredVariable"], (name, result["variables"])
        assert result["loss"][-1] < result["loss"][0], (name, result["loss"])  # it learned
        assert result["shape"] == shape and result["labels"] == [3] and result["in_range"]
        assert result["finite_scores"]
