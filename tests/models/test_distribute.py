"""Generators train under a tf.distribute strategy entered by the caller (``with strategy.scope()``).

Logical devices and TF_CONFIG must be set before TensorFlow starts, so each run happens in a fresh
interpreter: ``MirroredStrategy`` over two logical CPU devices, and ``MultiWorkerMirroredStrategy``
over two worker processes talking over localhost ports.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap

MIRRORED = textwrap.dedent("""
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from sklearn.datasets import load_digits
    from synthaug import VAE, Flow
    from synthaug.integrations.tf_data import SyntheticMix

    d = load_digits()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {"replicas": strategy.num_replicas_in_sync}
    def vae():
        return VAE(hidden_units=(32,), latent_dim=4, epochs=3, n_importance=10, validation_fraction=0.0,
                   random_state=0)
    models = {
        "vae": (vae(), d.images[:400], d.target[:400]),
        "flow": (Flow(n_layers=2, hidden_units=(16,), epochs=3, validation_fraction=0.0, random_state=0),
                 d.data[:400], d.target[:400]),
        # streamed from a tf.data.Dataset, with a validation split
        "vae_dataset": (VAE(hidden_units=(32,), latent_dim=4, architecture="mlp", epochs=3, n_importance=10,
                            validation_fraction=0.2, random_state=0),
                        tf.data.Dataset.from_tensor_slices((d.images[:400], d.target[:400])).batch(50), None),
    }
    for name, (model, X, y) in models.items():
        with strategy.scope():
            model.fit(X, y)
        samples, labels = model.generate(20, y=3, random_state=0)
        out[name] = {
            "variables": sorted({type(v.value).__name__ for v in model.model_.trainable_variables}),
            "loss": model.history_["loss"], "val_loss": model.history_.get("val_loss"),
            "shape": list(samples.shape), "labels": sorted(set(labels.tolist())),
            "in_range": bool(samples.min() >= 0 and samples.max() <= 16),
            "finite_scores": bool(np.isfinite(model.score_samples(d.images[:10] if name != "flow" else d.data[:10],
                                                                  d.target[:10])).all()),
        }
    out["vae_one_device_loss"] = vae().fit(d.images[:400], d.target[:400]).history_["loss"]

    # SyntheticMix inside a classifier trained under the strategy: each replica mixes its slice
    generator = models["vae_dataset"][0]
    with strategy.scope():
        images, labels = keras.Input((8, 8)), keras.Input((), dtype="int32")
        body = keras.Sequential([keras.layers.Flatten(), keras.layers.Rescaling(1 / 16), keras.layers.Dense(10)])
        clf = keras.Model([images, labels], body(SyntheticMix(generator, 0.5, seed=0)([images, labels])))
        clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = tf.data.Dataset.from_tensor_slices(((d.images.astype("float32"), d.target.astype("int32")), d.target))
    history = clf.fit(ds.batch(64), epochs=2, verbose=0)
    out["mix_loss"] = history.history["loss"]

    # Edge cases of splitting batches over the replicas, and the other families.
    from synthaug import GAN, PixelCNN, PoseModel
    wine = d.data[:160]  # 144 training rows: batch_size=143 leaves one row, an empty replica slice
    edges = {
        "vae_one_row": VAE(hidden_units=(16,), latent_dim=2, architecture="mlp", epochs=2, batch_size=143,
                           n_importance=5, random_state=0),
        "flow_one_row": Flow(n_layers=2, hidden_units=(16,), epochs=2, batch_size=143, random_state=0),
        "pixelcnn_odd": PixelCNN(filters=8, n_blocks=1, epochs=1, batch_size=63, random_state=0),
        "pose": PoseModel(epochs=5, n_rounds=1, random_state=0),
    }
    for name, model in edges.items():
        X = wine if name.endswith("one_row") else d.images[:300]
        try:
            with strategy.scope():
                model.fit(X, d.target[:len(X)])
            loss = model.history_.get("loss", [0.0]) if hasattr(model, "history_") else [0.0]
            out[name] = {"ok": bool(np.isfinite(loss).all()),
                         "shape": list(np.shape(model.generate(4, random_state=0)[0]))}
        except Exception as exc:
            out[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        with strategy.scope():
            GAN(epochs=1, batch_size=1, random_state=0).fit(d.images[:40])
        out["gan_tiny_batch"] = "trained"
    except ValueError as exc:
        out["gan_tiny_batch"] = str(exc)
    print("RESULT" + json.dumps(out))
""")

WORKER = textwrap.dedent("""
    import hashlib, json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits
    from synthaug import VAE

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # the cluster comes from TF_CONFIG
    d = load_digits()
    with strategy.scope():
        vae = VAE(hidden_units=(16,), conv_filters=(4, 8), latent_dim=2, epochs=2, batch_size=64,
                  validation_fraction=0.0, random_state=0).fit(d.images[:256], d.target[:256])
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in vae.model_.get_weights()))
    samples, labels = vae.generate(10, y=3, random_state=0)
    print("RESULT" + json.dumps({
        "replicas": strategy.num_replicas_in_sync, "kind": type(vae).__name__,
        "variables": sorted({type(v.value).__name__ for v in vae.model_.trainable_variables}),
        "weights": digest.hexdigest(), "loss": vae.history_["loss"], "shape": list(samples.shape),
        "labels": sorted(set(labels.tolist())), "in_range": bool(samples.min() >= 0 and samples.max() <= 16),
    }))
""")


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT")]
    return json.loads(lines[0][len("RESULT"):]) if lines else None


def test_fit_under_mirrored_strategy_on_two_devices():
    run = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=600)
    out = _result(run.stdout)
    assert run.returncode == 0 and out, run.stderr[-3000:]
    assert out["replicas"] == 2
    for name, shape in (("vae", [20, 8, 8]), ("flow", [20, 64]), ("vae_dataset", [20, 8, 8])):
        result = out[name]
        assert result["variables"] == ["MirroredVariable"], (name, result["variables"])
        assert result["loss"][-1] < result["loss"][0], (name, result["loss"])  # it learned
        assert result["shape"] == shape and result["labels"] == [3] and result["in_range"]
        assert result["finite_scores"]
    assert len(out["vae_dataset"]["val_loss"]) == 3
    # two replicas follow the one-device loss curve, within the noise of different random draws
    two, one = out["vae"]["loss"], out["vae_one_device_loss"]
    assert all(abs(a - b) / b < 0.01 for a, b in zip(two, one)), (two, one)  # measured: < 0.0003
    assert out["mix_loss"][-1] < out["mix_loss"][0]
    # a replica's empty slice is not a divergence, odd batches split unevenly, PoseModel registers
    assert out["vae_one_row"] == {"ok": True, "shape": [4, 64]}, out["vae_one_row"]
    assert out["flow_one_row"] == {"ok": True, "shape": [4, 64]}, out["flow_one_row"]
    assert out["pixelcnn_odd"] == {"ok": True, "shape": [4, 8, 8]}, out["pixelcnn_odd"]
    assert out["pose"] == {"ok": True, "shape": [4, 8, 8]}, out["pose"]
    assert "fewer than the 2 replicas" in out["gan_tiny_batch"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_workers_train_the_same_model_with_multi_worker_mirrored_strategy():
    cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=600)
            outputs.append(_result(stdout))
            assert worker.returncode == 0 and outputs[-1], stderr[-3000:]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    first, second = outputs
    for out in outputs:
        assert out["replicas"] == 2 and out["kind"] == "VAE" and out["variables"] == ["MirroredVariable"]
        assert out["shape"] == [10, 8, 8] and out["labels"] == [3] and out["in_range"]
        assert out["loss"][-1] < out["loss"][0]
    # synchronous training: both workers end with the same weights and saw the same losses
    assert first["weights"] == second["weights"] and first["loss"] == second["loss"]
