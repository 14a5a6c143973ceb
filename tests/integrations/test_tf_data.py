"""tf.data integration: augment(), the SyntheticMix layer and fitting generators from a dataset."""
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_wine
from sklearn.exceptions import NotFittedError

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from synthaug import GAN, VAE, Flow  # noqa: E402
from synthaug.integrations.tf_data import SyntheticMix, augment  # noqa: E402

DIGITS = load_digits()
X = DIGITS.images.astype("float32")  # 1797 x 8 x 8, levels 0..16
Y = DIGITS.target


@pytest.fixture(scope="module")
def vae():
    """A small conditional VAE whose samples are the decoder's mean (smooth, class-faithful digits)."""
    return VAE(hidden_units=(128,), latent_dim=8, architecture="mlp", epochs=15, patience=15,
               decoder_output="mean", random_state=0).fit(X, Y)


@pytest.fixture(scope="module")
def unconditional():
    return VAE(hidden_units=(32,), latent_dim=4, architecture="mlp", epochs=2, random_state=0).fit(X[:300])


def _collect(ds, batched=True):
    """All examples of a dataset as arrays (features, labels or None), in order."""
    xs, ys = [], []
    for element in (ds.unbatch() if batched else ds):
        x, y = element if isinstance(element, tuple) else (element, None)
        xs.append(x.numpy())
        if y is not None:
            ys.append(y.numpy())
    return np.stack(xs), (np.asarray(ys) if ys else None)


def _replaced(original, mixed):
    return np.any(original.reshape(len(original), -1) != mixed.reshape(len(mixed), -1), axis=1)


# -- augment ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["batched", "static-batch", "unbatched", "unbatched-uint8-channel"])
def test_element_spec_order_and_count_are_kept(vae, layout):
    if layout == "batched":
        ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(64)
    elif layout == "static-batch":
        ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(64, drop_remainder=True)
    elif layout == "unbatched":
        ds = tf.data.Dataset.from_tensor_slices((X, Y))
    else:  # features only, (8, 8, 1) uint8: a dtype and shape other than the generator's
        ds = tf.data.Dataset.from_tensor_slices(X.astype("uint8")[..., None])
    mixed = augment(ds, vae, ratio=0.4, seed=0)
    assert mixed.element_spec == ds.element_spec
    batched = layout in ("batched", "static-batch")
    real, real_y = _collect(ds, batched)
    out, out_y = _collect(mixed, batched)
    assert out.shape == real.shape and out.dtype == real.dtype
    replaced = _replaced(real, out)
    # untouched examples stay where they were; generated ones are on the digits' levels
    np.testing.assert_array_equal(out[~replaced], real[~replaced])
    assert 0.3 < replaced.mean() < 0.5
    synthetic = out[replaced].astype(float)
    assert synthetic.min() >= 0 and synthetic.max() <= 16 and np.all(synthetic == np.round(synthetic))
    if real_y is not None:
        np.testing.assert_array_equal(out_y, real_y)  # labels="keep"


def test_ratio_is_respected_within_sampling_error(vae):
    ds = tf.data.Dataset.from_tensor_slices((X, Y)).batch(128)
    for ratio in (0.1, 0.5):
        share = _replaced(X, _collect(augment(ds, vae, ratio=ratio, seed=1))[0]).mean()
        assert abs(share - ratio) < 4 * np.sqrt(ratio * (1 - ratio) / len(X)), (ratio, share)
    np.testing.assert_array_equal(_collect(augment(ds, vae, ratio=0.0, seed=1))[0], X)
    assert _replaced(X, _collect(augment(ds, vae, ratio=1.0, seed=1))[0]).all()


def test_synthetic_examples_match_their_labels(vae):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=500).fit(X.reshape(len(X), -1) / 16, Y)
    ds = tf.data.Dataset.from_tensor_slices((X[:600], Y[:600])).batch(128)
    out, out_y = _collect(augment(ds, vae, ratio=1.0, seed=2))  # every example synthetic, labels kept
    agreement = np.mean(clf.predict(out.reshape(len(out), -1) / 16) == out_y)
    print("label agreement", agreement)
    assert agreement > 0.7, agreement  # chance is 0.1
    out, out_y = _collect(augment(ds, vae, ratio=0.5, labels=[3], seed=2))
    replaced = _replaced(X[:600], out)
    assert np.all(out_y[replaced] == 3) and np.array_equal(out_y[~replaced], Y[:600][~replaced])
    out, out_y = _collect(augment(ds, vae, ratio=1.0, labels="prior", seed=2))
    counts = np.bincount(out_y, minlength=10) / len(out_y)
    assert np.abs(counts - vae.class_prior_).max() < 0.06  # 4 binomial sd at 600 draws


def test_generation_runs_in_graph_never_per_example(vae, monkeypatch):
    calls = []
    graph_sampler = type(vae)._sample_network_graph

    def counting(self, *args):
        calls.append(1)  # runs when TensorFlow traces the function, not per batch
        return graph_sampler(self, *args)

    def python_sampler(*args, **kwargs):
        raise AssertionError("the numpy sampler must not be used")

    monkeypatch.setattr(type(vae), "_sample_network_graph", counting)
    monkeypatch.setattr(type(vae), "_sample_network", python_sampler)
    ds = augment(tf.data.Dataset.from_tensor_slices((X, Y)), vae, ratio=0.5, seed=0, chunk_size=64)
    n = sum(1 for _ in ds)  # 29 chunks of generation
    assert n == len(X) and 1 <= len(calls) <= 2

    @tf.function
    def pixel_sum(dataset):  # the dataset is usable inside a graph
        return dataset.reduce(tf.constant(0.0), lambda total, element: total + tf.reduce_sum(element[0]))

    assert float(pixel_sum(ds)) > 0 and len(calls) <= 2


def test_same_seed_same_data_and_fresh_samples_every_pass(vae):
    ds = tf.data.Dataset.from_tensor_slices((X[:300], Y[:300])).batch(50)
    first = augment(ds, vae, ratio=0.5, seed=7)
    a, b = _collect(first)[0], _collect(augment(ds, vae, ratio=0.5, seed=7))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _collect(augment(ds, vae, ratio=0.5, seed=8))[0])
    assert not np.array_equal(a, _collect(first)[0])  # the second pass (epoch) draws anew


def test_xla_and_reduced_precision_run_on_cpu(vae):
    ds = tf.data.Dataset.from_tensor_slices((X[:256], Y[:256])).batch(128)
    for options in (dict(jit_compile=True), dict(precision="mixed_bfloat16"), dict(precision="mixed_float16")):
        mixed = augment(ds, vae, ratio=0.5, seed=0, **options)
        out, out_y = _collect(mixed)
        replaced = _replaced(X[:256], out)
        assert mixed.element_spec == ds.element_spec and 0.35 < replaced.mean() < 0.65, options
        assert np.all(np.isin(out[replaced], np.arange(17))) and np.array_equal(out_y, Y[:256])


def test_xla_samples_the_decoder_and_the_label_prior(unconditional):
    # A sampling decoder and labels="prior" draw categoricals, which XLA takes with int32 seeds only.
    sampling = VAE(hidden_units=(16,), latent_dim=2, architecture="mlp", epochs=1, random_state=0).fit(X[:200], Y[:200])
    ds = tf.data.Dataset.from_tensor_slices((X[:200], Y[:200])).batch(50)
    for labels in ("keep", "prior"):
        once = _collect(augment(ds, sampling, ratio=0.5, labels=labels, seed=0, jit_compile=True))[0]
        again = _collect(augment(ds, sampling, ratio=0.5, labels=labels, seed=0, jit_compile=True))[0]
        assert np.array_equal(once, again) and 0.35 < _replaced(X[:200], once).mean() < 0.65, labels
    flat = tf.data.Dataset.from_tensor_slices(X[:100]).batch(50)
    assert _collect(augment(flat, unconditional, ratio=0.5, seed=0, jit_compile=True))[0].shape == (100, 8, 8)


def test_augment_errors(vae, unconditional):
    from synthaug.base import GenerativeEstimator

    ds = tf.data.Dataset.from_tensor_slices((X[:10], Y[:10]))
    with pytest.raises(NotFittedError):
        augment(ds, VAE())

    class NoGraphSampler(GenerativeEstimator):  # e.g. a family without an in-graph sampler yet
        def fit(self, X, y=None):
            self.model_ = None
            return self

    with pytest.raises(TypeError, match="in-graph sampler"):
        augment(ds, NoGraphSampler().fit(X))
    with pytest.raises(ValueError, match="fitted without labels"):
        augment(ds, unconditional)
    with pytest.raises(ValueError, match=r"shape \(4, 4\)"):
        augment(tf.data.Dataset.from_tensor_slices(X[:10, :4, :4]), vae)
    text = tf.data.Dataset.from_tensor_slices((X[:10], Y[:10].astype(str)))
    with pytest.raises(ValueError, match=r"labels are string, but the VAE's classes are numbers \(\[0, 1, 2"):
        augment(text, vae)  # refused when called, not at iteration
    with pytest.raises(ValueError, match="ratio"):
        augment(ds, vae, ratio=1.5)
    with pytest.raises(ValueError, match="labels must be"):
        augment(ds, vae, labels=[99])
    with pytest.raises(TypeError, match="element"):
        augment(tf.data.Dataset.from_tensor_slices({"x": X[:10]}), vae)
    with pytest.raises(ValueError, match="precision"):
        augment(ds, vae, precision="float64")
    with pytest.raises(TypeError, match="jit_compile must be True or False; got 'yes'"):
        augment(ds, vae, jit_compile="yes")


# -- SyntheticMix ---------------------------------------------------------------------------------------
def test_synthetic_mix_is_identity_at_inference_and_mixes_in_training(vae, unconditional):
    mix = SyntheticMix(vae, ratio=0.3, seed=0)
    np.testing.assert_array_equal(mix([X, Y], training=False).numpy(), X)
    out = mix([X, Y], training=True).numpy()
    replaced = _replaced(X, out)
    assert abs(replaced.sum() - round(0.3 * len(X))) <= 2  # exactly round(ratio * batch), bar look-alikes
    assert np.all(np.isin(out[replaced], np.arange(17)))
    assert not np.array_equal(out, mix([X, Y], training=True).numpy())  # a fresh draw every step
    plain = SyntheticMix(unconditional, ratio=1.0, seed=0)
    assert _replaced(X[:300], plain(X[:300], training=True).numpy()).all()
    with pytest.raises(ValueError, match="class-conditional"):
        mix(X, training=True)


def test_synthetic_mix_trains_a_classifier_with_xla_and_leaves_the_generator_alone(vae, tmp_path):
    images, labels = keras.Input((8, 8)), keras.Input((), dtype="int32")
    body = keras.Sequential([keras.layers.Flatten(), keras.layers.Rescaling(1 / 16), keras.layers.Dense(10)])
    train_model = keras.Model([images, labels], body(SyntheticMix(vae, 0.5, seed=0)([images, labels])))
    model = keras.Model(images, body(images))  # the inference model shares the body's weights
    before = [w.copy() for w in vae.model_.get_weights()]
    train_model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        metrics=["accuracy"], jit_compile=True)  # what Keras does by default on a GPU
    ds = tf.data.Dataset.from_tensor_slices(((X, Y.astype("int32")), Y)).shuffle(1797, seed=0).batch(64)
    history = train_model.fit(ds, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    real_accuracy = np.mean(model.predict(X, verbose=0).argmax(1) == Y)
    print("accuracy on real digits", real_accuracy)
    assert real_accuracy > 0.8  # chance is 0.1
    assert len(train_model.trainable_weights) == len(body.trainable_weights)  # the generator's are not the model's
    for w0, w1 in zip(before, vae.model_.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    np.testing.assert_allclose(model.predict(X[:20], verbose=0), train_model.predict([X[:20], Y[:20]], verbose=0),
                               rtol=1e-5, atol=1e-5)
    path = tmp_path / "classifier.keras"
    train_model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)  # the layer comes back without a generator
    np.testing.assert_allclose(loaded.predict([X[:20], Y[:20]], verbose=0), model.predict(X[:20], verbose=0),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no generator"):
        loaded.fit(ds.take(1), verbose=0)


# -- fit from a dataset -----------------------------------------------------------------------------------
def test_dataset_statistics_equal_the_array_ones(monkeypatch):
    wine = load_wine().data
    cases = [  # (array, labels, dataset)
        (X, Y, tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(1797, seed=0).batch(100)),
        (X * 1.5, None, tf.data.Dataset.from_tensor_slices(X * 1.5)),  # continuous images: global scaling
        (wine, None, tf.data.Dataset.from_tensor_slices(wine).batch(32)),  # tabular: per-feature scaling
    ]
    for array, labels, ds in cases:
        expected = VAE()
        expected._fit_data(array, labels)
        got = VAE()
        monkeypatch.setattr(VAE, "_to_network", lambda *a: pytest.fail("the stream went through numpy"))
        stream, codes = got._fit_data(ds, None)
        monkeypatch.undo()
        assert len(stream) == len(array) and stream.shape == (len(array), int(np.prod(array.shape[1:])))
        assert (codes is None) == (labels is None)
        assert got.input_shape_ == expected.input_shape_ and got.n_features_in_ == expected.n_features_in_
        assert got.n_levels_ == expected.n_levels_ and got.data_min_ == expected.data_min_
        assert got.data_max_ == expected.data_max_
        if labels is not None:
            np.testing.assert_array_equal(got.classes_, expected.classes_)
            np.testing.assert_allclose(got.class_prior_, expected.class_prior_)
        if expected.n_levels_ is None:
            for name in ("offset_", "scale_", "feature_min_", "feature_max_"):
                assert getattr(got, name).shape == getattr(expected, name).shape, name
                np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-6, err_msg=name)
        # the network units the stream yields are those of the array path (as a multiset: shuffled)
        streamed = np.concatenate([b[0].numpy() if labels is not None else b.numpy()
                                   for b in stream.batches(512)])
        direct = expected._to_network(array)
        np.testing.assert_allclose(np.sort(streamed, axis=0), np.sort(direct, axis=0), rtol=1e-5, atol=1e-5)
    # the fingerprint does not depend on the order of the examples
    a, b = VAE(), VAE()
    a._fit_data(tf.data.Dataset.from_tensor_slices((X, Y)), None)
    b._fit_data(tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(1797, seed=3).batch(7), None)
    assert a.data_fingerprint_ == b.data_fingerprint_
    c = VAE()
    c._fit_data(tf.data.Dataset.from_tensor_slices((X, (Y + 1) % 10)), None)
    assert c.data_fingerprint_ != a.data_fingerprint_


def test_validation_split_is_a_fixed_partition_by_feature_hash():
    vae = VAE()
    stream, _ = vae._fit_data(tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(1797, seed=0), None)
    train = np.concatenate([b[0].numpy() for b in stream.batches(256, "train", 0.2)])
    val = np.concatenate([b[0].numpy() for b in stream.batches(256, "validation", 0.2)])
    assert len(train) + len(val) == len(X) and 0.15 < len(val) / len(X) < 0.25
    rows = {r.tobytes() for r in train}
    assert not any(r.tobytes() in rows for r in val)  # duplicates of an example go to its side
    val_again = np.concatenate([b[0].numpy() for b in stream.batches(256, "validation", 0.2)])
    np.testing.assert_array_equal(np.sort(val, axis=0), np.sort(val_again, axis=0))


def test_vae_and_flow_fit_from_a_dataset():
    vae = VAE(hidden_units=(32,), latent_dim=4, architecture="mlp", epochs=3, validation_fraction=0.2,
              n_importance=20, random_state=0).fit(tf.data.Dataset.from_tensor_slices((X[:600], Y[:600])).batch(32))
    assert vae.history_["loss"][-1] < vae.history_["loss"][0] and len(vae.history_["val_loss"]) == 3
    samples, labels = vae.generate(10, y=4, random_state=0)
    assert samples.shape == (10, 8, 8) and samples.dtype == np.float32 and np.all(labels == 4)
    assert np.isfinite(vae.score_samples(X[:5], Y[:5])).all()
    wine = load_wine().data
    flow = Flow(n_layers=2, hidden_units=(16,), epochs=2, random_state=0).fit(
        tf.data.Dataset.from_tensor_slices(wine))
    out = flow.generate(20, random_state=0)
    assert out.shape == (20, 13) and np.all(out >= wine.min(0)) and np.all(out <= wine.max(0))
    assert np.isfinite(flow.score_samples(wine[:5])).all()
    # Its Student-t base samples in-graph under XLA too (augment(jit_compile=True)).
    ds = tf.data.Dataset.from_tensor_slices(wine.astype("float32")).batch(64)
    mixed = np.concatenate(list(augment(ds, flow, ratio=0.5, seed=0, jit_compile=True).as_numpy_iterator()))
    replaced = np.any(mixed != wine.astype("float32"), axis=1)
    assert mixed.shape == wine.shape and np.isfinite(mixed).all() and 0.35 < replaced.mean() < 0.65


def test_gan_fits_from_an_image_folder_and_augments_it(tmp_path):
    from PIL import Image

    for label in (0, 1, 2):
        folder = tmp_path / str(label)
        folder.mkdir()
        for i, image in enumerate(DIGITS.images[DIGITS.target == label][:30]):
            Image.fromarray((image * 15).astype(np.uint8)).save(folder / f"{i}.png")
    ds = keras.utils.image_dataset_from_directory(tmp_path, color_mode="grayscale", image_size=(8, 8),
                                                  batch_size=16, seed=0, verbose=False)
    gan = GAN(hidden_units=(32,), latent_dim=8, epochs=3, random_state=0).fit(ds)
    assert gan.input_shape_ == (8, 8, 1) and gan.classes_.tolist() == [0, 1, 2] and gan.dtype_ == np.float32
    samples, labels = gan.generate(12, random_state=0)
    assert samples.shape == (12, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 240
    mixed = augment(ds, gan, ratio=0.5, seed=0)
    assert mixed.element_spec == ds.element_spec
    assert sum(int(tf.shape(x)[0]) for x, _ in mixed) == 90


def test_fit_from_dataset_errors():
    vae = VAE(epochs=1)
    with pytest.raises(ValueError, match="y must be None"):
        vae.fit(tf.data.Dataset.from_tensor_slices(X[:10]), Y[:10])
    with pytest.raises(ValueError, match="one-hot"):
        vae.fit(tf.data.Dataset.from_tensor_slices((X[:10], np.eye(10)[Y[:10]])).batch(4))
    with pytest.raises(ValueError, match="NaN or inf"):
        bad = X[:10].copy()
        bad[3, 0, 0] = np.nan
        vae.fit(tf.data.Dataset.from_tensor_slices(bad))
    with pytest.raises(TypeError, match="numeric"):
        vae.fit(tf.data.Dataset.from_tensor_slices(np.array(["a", "b"])))
    with pytest.raises(ValueError, match="at least 2"):
        vae.fit(tf.data.Dataset.from_tensor_slices(X[:1]))
    with pytest.raises(ValueError, match="one fixed size"):  # unbatched images of unknown size
        vae.fit(tf.data.Dataset.from_generator(lambda: zip(X[:4], Y[:4]), output_signature=(
            tf.TensorSpec((None, None), tf.float32), tf.TensorSpec((), tf.int64))))


def test_label_lists_are_matched_as_given_never_converted(vae):
    ds = tf.data.Dataset.from_tensor_slices((X[:128], Y[:128])).batch(64)
    for text in ("3", "7"):  # '7' is not 7: refused as generate refuses it
        with pytest.raises(ValueError, match=rf"labels must be .*labels not seen in fit: \['{text}'\]"):
            augment(ds, vae, ratio=1.0, labels=[text])
    with pytest.raises(ValueError, match="labels must be"):
        augment(ds, vae, ratio=1.0, labels=[])
    out = np.concatenate([y for _, y in augment(ds, vae, ratio=1.0, labels=[7, 2], seed=0).as_numpy_iterator()])
    assert set(out.tolist()) == {2, 7}


def test_labels_beyond_float64_precision_get_their_own_class():
    big = 2**53 + Y[:200] % 2  # classes 2**53 and 2**53 + 1: one number in float64
    model = VAE(hidden_units=(16,), latent_dim=2, architecture="mlp", epochs=1, random_state=0).fit(X[:200], big)
    codes = model._codes_graph(tf.constant([2**53, 2**53 + 1, 2**53 + 1], tf.int64)).numpy()
    np.testing.assert_array_equal(model.classes_[codes], [2**53, 2**53 + 1, 2**53 + 1])


def test_static_batches_without_labels_count_as_batches(unconditional):
    ds = tf.data.Dataset.from_tensor_slices(X[:400]).batch(50, drop_remainder=True)
    model = VAE(hidden_units=(16,), latent_dim=2, architecture="mlp", epochs=1, random_state=0).fit(ds.prefetch(1))
    assert model.input_shape_ == (8, 8) and model.generate(3, random_state=0).shape == (3, 8, 8)
    mixed = augment(ds, unconditional, ratio=0.5, seed=0)
    assert mixed.element_spec == ds.element_spec and len(list(mixed)) == 8
    rows = tf.data.Dataset.from_tensor_slices(X[:400].reshape(400, 64)).batch(50, drop_remainder=True)
    assert VAE(hidden_units=(16,), latent_dim=2, epochs=1, random_state=0).fit(rows).input_shape_ == (64,)
    # the unbatched view still holds one example per element, and keeps its length
    unbatched = augment(ds.unbatch(), unconditional, ratio=0.5, seed=0)
    assert unbatched.element_spec.shape == (8, 8) and len(unbatched) == 400
    assert augment(tf.data.Dataset.from_tensor_slices(X[:100]), unconditional, seed=0).cardinality() == 100
    # steps after the batch that make single examples again are not batches
    from synthaug.models.streamed import dataset_layout

    split = tf.data.Dataset.from_tensor_slices(X[:40]).batch(10, drop_remainder=True)
    for single in (split.flat_map(tf.data.Dataset.from_tensor_slices), split.map(lambda x: x[0]), split.unbatch()):
        layout = dataset_layout(single)
        assert not layout.batched and layout.sample_shape == (8, 8)
