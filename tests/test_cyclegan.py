"""CycleGAN at the formula level: cycle and identity losses, the pool of past fakes, the networks'
shapes, one training step against a hand computation, the two-domain datasets and the metrics."""
import copy
import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn

from gan_tasks.methods.cyclegan import (CycleParams, CycleStep, ImagePool, build_cyclegan, cycle_loss, identity_loss,
                                        translate)
from gan_tasks.evaluation.cyclegan import Domain, direction, grid, l1_01
from gan_tasks.data.datasets import DATASETS, dataset_path, load_array
from gan_tasks.data.images import thicken, upload
from gan_tasks.methods.losses import LOSSES
from gan_tasks.evaluation.classifier import fetch, to_uint8
from gan_tasks.evaluation.provenance import FIELDS, reference_indices
from tests.conftest import DATA


def test_cycle_loss_is_the_mean_l1_of_both_reconstructions():
    a, b = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    rec_a = torch.full_like(a, 0.5)  # |0.5 - 0| = 0.5 everywhere
    rec_b = b.clone()
    rec_b[0, 0, 0, 0] = -1.0  # one pixel of eight off by 2: mean 0.25
    assert cycle_loss(a, rec_a, b, rec_b).item() == pytest.approx(0.5 + 0.25)
    assert cycle_loss(a, a, b, b).item() == 0.0


def test_identity_loss_compares_each_generator_with_its_own_domain():
    a, b = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    f_a, g_b = a + 0.1, b - 0.3  # F(a) off by 0.1, G(b) off by 0.3
    assert identity_loss(a, f_a, b, g_b).item() == pytest.approx(0.4, abs=1e-6)


def test_pool_fills_then_swaps_half_the_time_and_resumes_exactly():
    gen = torch.Generator().manual_seed(0)
    pool = ImagePool(50)
    first = torch.arange(50.0).view(50, 1, 1, 1)
    assert torch.equal(pool.query(first, gen), first)  # while filling: every fake comes back, and is kept
    assert torch.equal(pool.images, first)
    swapped, seen = 0, set(range(50))
    for step in range(40):
        new = (1000.0 + 10 * step + torch.arange(10.0)).view(10, 1, 1, 1)
        out = pool.query(new, gen)
        for x, o in zip(new.flatten().tolist(), out.flatten().tolist()):
            if o != x:  # an old fake came back: it was in the pool, and the new one took its place
                assert o in seen
                seen.discard(o), seen.add(x)
                swapped += 1
        assert len(pool.images) == 50 and set(pool.images.flatten().tolist()) == seen
    assert 0.4 < swapped / 400 < 0.6  # the paper's 50 % chance
    # The pool's contents and the generator's state are all it needs to go on identically.
    saved, gstate = copy.deepcopy(pool.state_dict()), gen.get_state()
    x = torch.randn(10, 1, 1, 1)
    expect = pool.query(x, gen)
    other = ImagePool(0)
    other.load_state_dict(saved)
    assert torch.equal(other.query(x, torch.Generator().set_state(gstate)), expect)
    assert torch.equal(ImagePool(0).query(x, gen), x)  # size 0: no pool


@pytest.mark.parametrize("side,patches", [(28, 7), (32, 8)])
def test_networks_keep_the_image_shape_and_score_patches(side, patches):
    nets = build_cyclegan((1, side, side), width=8, blocks=2, d_width=8)
    x = torch.rand(4, 1, side, side) * 2 - 1
    for g in ("G", "F"):
        y = nets[g](x)
        assert y.shape == x.shape and y.abs().max() <= 1
    assert nets["D_A"](x).shape == (4, 1, patches, patches)
    with pytest.raises(ValueError, match="28x28 or 32x32"):
        build_cyclegan((1, 30, 30), 8, 2, 8)


@pytest.mark.parametrize("identity", [0.0, 0.5])
def test_one_step_minimises_the_papers_objective(identity):
    torch.manual_seed(0)
    nets = build_cyclegan((1, 28, 28), width=8, blocks=1, d_width=8)
    before = copy.deepcopy(nets)
    loss = LOSSES.get("lsgan")
    lp = {"a": 0.0, "b": 1.0, "c": 1.0, "d_steps": 1}
    opt_g = torch.optim.Adam([p for k in ("G", "F") for p in nets[k].parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([p for k in ("D_A", "D_B") for p in nets[k].parameters()], 2e-4, betas=(0.5, 0.999))
    step = CycleStep(nets, opt_g, opt_d, loss, lp, CycleParams(identity=identity, pool=0), 1, torch.Generator())
    a, b = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
    out = step(a, b, batch=None)
    G, F, DA, DB = (before[k] for k in ("G", "F", "D_A", "D_B"))
    # L = L_GAN(G, D_B) + L_GAN(F, D_A) + 10 L_cyc + 0.5 * 10 L_idt, least squares as Zhu et al.'s
    # code: (D(fake) - 1)^2 with no 1/2 (with one, lambda 10 would weigh the cycle twice the paper's)
    adv = ((DB(G(a)) - 1) ** 2).mean() + ((DA(F(b)) - 1) ** 2).mean()
    cyc = (F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean()
    idt = (G(b) - b).abs().mean() + (F(a) - a).abs().mean()
    assert out["loss_g"].item() == pytest.approx((adv + 10 * cyc + identity * 10 * idt).item(), rel=1e-5)
    assert out["cycle"].item() == pytest.approx(cyc.item(), rel=1e-5)
    assert out["adversarial_g"].item() == pytest.approx(adv.item(), rel=1e-5)
    # D's loss: on the fakes the generators' step made (pool 0: no older ones), as the authors' code.
    with torch.no_grad():
        d = 0.5 * ((DB(b) - 1) ** 2).mean() + 0.5 * (DB(G(a)) ** 2).mean() \
            + 0.5 * ((DA(a) - 1) ** 2).mean() + 0.5 * (DA(F(b)) ** 2).mean()
    assert out["loss_d"].item() == pytest.approx(d.item(), rel=1e-5)
    assert not torch.equal(nets["D_A"][0].weight, DA[0].weight)  # both updates happened


def test_adversarial_term_is_zhu_et_als_without_the_lsgan_half():
    """lambda means the paper's: G's least-squares term is (D(G(a)) - c)^2, the registry's lsgan G loss
    times 2; the non-saturating and wgan G terms carry no 1/2 and are unchanged."""
    from gan_tasks.methods.cyclegan import adversarial_g

    sf = torch.tensor([[0.2, -1.0], [3.0, 0.5]])
    for name in ("lsgan", "lsgan-011", "lsgan-m110"):
        p = LOSSES.get(name).defaults_for("images")
        assert adversarial_g(LOSSES.get(name), sf, p).item() == pytest.approx(((sf - p["c"]) ** 2).mean().item())
    assert adversarial_g(LOSSES.get("non-saturating"), sf, {}).item() == pytest.approx(Fn.softplus(-sf).mean().item())
    assert adversarial_g(LOSSES.get("wgan"), sf, {}).item() == pytest.approx(-sf.mean().item())


def test_thicken_is_a_3x3_dilation():
    x = np.zeros((1, 1, 5, 5), np.uint8)
    x[0, 0, 2, 2], x[0, 0, 0, 4] = 200, 90
    y = thicken(x)[0, 0]
    assert (y[1:4, 1:4] == 200).all()  # the bright pixel's 3x3 square (y[1, 3] is max(200, 90))
    assert y[0, 3] == y[0, 4] == y[1, 4] == 90  # the corner pixel's neighbourhood, clipped at the border
    assert int(y.astype(int).sum()) == 9 * 200 + 3 * 90
    assert torch.equal(torch.from_numpy(y).float(), Fn.max_pool2d(torch.from_numpy(x).float(), 3, 1, 1)[0, 0])


@pytest.fixture(scope="module")
def thick(tmp_path_factory):
    from gan_tasks.data.storage import Storage

    st = Storage.parse(str(tmp_path_factory.mktemp("thick")))
    manifest = upload(st, "mnist-thick", str(DATA / "mnist"))
    return st, manifest


def _rows(x: np.ndarray) -> set[str]:
    return {hashlib.sha1(r.tobytes()).hexdigest() for r in x}


def test_mnist_thick_domains_are_unpaired_and_its_test_pairs_are_the_truth(thick):
    st, manifest = thick
    assert DATASETS.get("mnist-thick").two_domain.paired_test
    arr = {k: load_array(st, dataset_path("mnist-thick", {}, k)) for k in manifest["files"]}
    assert arr["train_a"].shape == arr["train_b"].shape == (30_000, 1, 28, 28)
    assert dataset_path("mnist-thick", {}) == ("datasets", "mnist-thick", "train_a.npy")
    # No training image of B is the restyling of a training image of A: the halves are disjoint.
    assert not _rows(thicken(arr["train_a"])) & _rows(arr["train_b"])
    assert np.bincount(arr["train_a_labels"], minlength=10).min() > 2500  # shuffled: every digit in both
    assert np.array_equal(arr["test_b"], thicken(arr["test_a"]))
    assert np.array_equal(arr["test_a_labels"], arr["test_b_labels"])


def test_mnist_fashion_takes_each_domain_from_its_own_files(tmp_path):
    from gan_tasks.data.storage import Storage

    st = Storage.parse(str(tmp_path / "s"))
    manifest = upload(st, "mnist-fashion", str(DATA))
    assert manifest["files"]["train_a"]["shape"] == manifest["files"]["train_b"]["shape"] == [60_000, 1, 28, 28]
    a, b = (load_array(st, dataset_path("mnist-fashion", {}, f"test_{d}")) for d in "ab")
    assert not _rows(a) & _rows(b)
    assert not DATASETS.get("mnist-fashion").two_domain.paired_test


class Dilate(torch.nn.Module):
    def forward(self, x):
        return Fn.max_pool2d(x, 3, 1, 1)


def test_direction_metrics_score_the_oracle_zero_and_the_identity_its_distance(thick):
    st, _ = thick
    x = torch.from_numpy(load_array(st, dataset_path("mnist-thick", {}, "test_a"))[:300])
    truth = torch.from_numpy(load_array(st, dataset_path("mnist-thick", {}, "test_b"))[:300])
    y = torch.from_numpy(load_array(st, dataset_path("mnist-thick", {}, "test_a_labels"))[:300].astype(np.int64))
    d = Domain(x, y, truth, truth, None, None)
    ident = torch.nn.Identity()
    oracle = direction("a2b", Dilate(), ident, d, untrained=ident)
    assert oracle["a2b_gt_l1"] == pytest.approx(0.0, abs=1e-6)
    expect = float(np.abs(x.numpy().astype(float) - truth.numpy()).mean() / 255)
    assert oracle["a2b_gt_l1_identity"] == pytest.approx(expect, rel=1e-5) and expect > 0.05
    assert oracle["a2b_gt_l1_untrained"] == pytest.approx(expect, rel=1e-5)  # untrained = identity here
    # The cycle through an identity back-map: |dilate(a) - a|, the same distance.
    assert oracle["a2b_cycle_l1"] == pytest.approx(expect, rel=1e-5)
    pic = grid(Dilate(), ident, x, truth, n=8)
    assert pic.shape == (6, 8, 1, 28, 28) and np.allclose(pic[1], pic[3], atol=1e-6)  # G(a) = b for the oracle
    assert l1_01(torch.ones(1), -torch.ones(1)) == 1.0


def test_evaluate_reads_both_domains_and_ranks_the_oracle_above_the_identity():
    from gan_tasks.evaluation.cyclegan import evaluate
    from tests.evalkit import mnist_store

    st, meta = mnist_store()
    upload(st, "mnist-thick", str(DATA / "mnist"))
    ident = torch.nn.Identity()
    oracle, (ext, h), prov = evaluate(Dilate(), ident, ident, ident, st, "mnist-thick", n=500)
    same, _, _ = evaluate(ident, ident, ident, ident, st, "mnist-thick", n=500)
    assert (ext, h) == ("classifier", meta["hash"])
    assert oracle["a2b_gt_l1"] == pytest.approx(0.0, abs=1e-6)
    assert oracle["a2b_label_acc"] == oracle["a2b_label_acc_real"] > 0.9  # the MNIST classifier reads thick digits
    assert same["a2b_gt_l1"] == same["a2b_gt_l1_identity"] == oracle["a2b_gt_l1_identity"] > 0.05
    assert oracle["b2a_gt_l1"] == same["b2a_gt_l1"]  # F is the identity in both
    # Real-looking translations are closer to the target domain in the classifier's feature space.
    assert oracle["a2b_fid"] < same["a2b_fid"] and oracle["a2b_kid"] < same["a2b_kid"]
    # Every FID/KID carries its provenance: the target domain's training split, a seeded subset of it.
    assert set(prov) == {"a2b_fid", "a2b_kid", "b2a_fid", "b2a_kid"}
    assert all(set(p) == set(FIELDS) for p in prov.values())
    p = prov["a2b_fid"]
    assert (p["extractor"], p["weights_hash"], p["feature_layer"], p["n_real"], p["n_fake"], p["reference_split"],
            p["reference_seed"], p["g_ema"]) == ("classifier", meta["hash"], "features", 500, 500, "train_b", 0, False)
    assert p["dataset_id"] == load_manifest_sha(st, "train_b") != prov["b2a_fid"]["dataset_id"]
    assert prov["a2b_kid"]["feature_layer"] == "features" and p["torch_fidelity"] and p["resize"] == "stored 1x28x28 uint8"


def load_manifest_sha(st, split: str) -> str:
    return json.loads(st.read_bytes("datasets", "mnist-thick", "manifest.json"))["files"][split]["sha256"][:16]


def test_fid_reference_is_a_seeded_random_subset_of_the_target_domain_not_its_first_n(thick):
    """The a2b FID of the oracle equals torch-fidelity's on train_b at reference_indices(seed), not on
    train_b[:n]; another reference_seed, another value and a refused comparison."""
    from gan_tasks.evaluation.cyclegan import evaluate
    from gan_tasks.evaluation.fidelity import calculate
    from gan_tasks.evaluation.provenance import difference
    from tests.evalkit import copy_classifier, mnist_store

    st, _ = thick
    copy_classifier(mnist_store()[0], st)
    ident, n = torch.nn.Identity(), 200
    seed0, _, p0 = evaluate(Dilate(), ident, ident, ident, st, "mnist-thick", n=n)
    seed1, _, p1 = evaluate(Dilate(), ident, ident, ident, st, "mnist-thick", n=n, reference_seed=1)
    train_b = load_array(st, dataset_path("mnist-thick", {}, "train_b"))
    fake = to_uint8(translate(Dilate(), torch.from_numpy(load_array(st, dataset_path("mnist-thick", {}, "test_a"))[:n])))
    weights = fetch(st, "mnist", None)[0]
    fid = lambda real: calculate(fake, real, metrics=("fid",), extractor="classifier", weights_path=weights)["fid"]  # noqa
    assert seed0["a2b_fid"] == pytest.approx(fid(train_b[reference_indices(len(train_b), n, 0)]), rel=1e-6)
    assert seed0["a2b_fid"] != pytest.approx(fid(train_b[:n]), rel=1e-3)
    assert seed1["a2b_fid"] != seed0["a2b_fid"] and p1["a2b_fid"]["reference_seed"] == 1
    assert difference("fid", [json.dumps(p0["a2b_fid"]), json.dumps(p1["a2b_fid"])]) == \
        "FID not comparable: reference_seed 0 vs 1"


def _trial_cfg(model=None, **train):
    model = model or {}
    from gan_tasks.config import TrialConfig

    return TrialConfig.model_validate({
        "sweep_name": "t", "program": "cyclegan", "dataset": {"name": "mnist-thick"},
        "model": {"name": "cyclegan-resnet", "params": {"width": 4, "blocks": 1, **model}},
        "loss": {"name": "lsgan"}, "optimizer": {"name": "adam"}, "seed": 3,
        "train": {"steps": 10, "batch_size": 4, "g_ema": 0.9, **train}})


def test_program_state_and_generator_state_are_all_it_needs_to_go_on_bit_identically(thick):
    from gan_tasks.training.programs.cyclegan import CycleGAN

    st, _ = thick
    cfg = _trial_cfg({"pool": 3})  # a small pool: full after one step, so later steps draw from it

    def fresh():
        torch.manual_seed(cfg.seed)  # as the trial loop does before it builds the program
        return CycleGAN(cfg, st, torch.device("cpu"), torch.Generator().manual_seed(cfg.seed))

    ref = fresh()
    for i in range(6):
        row = ref.train_step(i, log_now=i == 5)
    assert set(row) >= {"loss_d", "loss_g", "grad_norm_d", "grad_norm_g", "cycle", "identity"}
    assert all(bool(torch.isfinite(v)) for k, v in row.items() if k != "penalty")  # lsgan: no penalty (NaN)
    assert ref.report_samples().shape == (48, 1, 28, 28)
    assert ref.G_eval is ref.ema["G"]
    saved, gstate = copy.deepcopy(ref.state_dict()), ref.gen.get_state()
    assert len(saved["pools"]["pool_a"]["images"]) == 3
    for i in range(6, 10):
        ref.train_step(i, False)
    back = fresh()
    back.load_state_dict(saved)
    back.gen.set_state(gstate)
    for i in range(6, 10):
        back.train_step(i, False)
    for k, m in {**ref.nets, **{f"{k}_ema": v for k, v in ref.ema.items()}}.items():
        other = {**back.nets, **{f"{k}_ema": v for k, v in back.ema.items()}}[k]
        for (name, a), b in zip(m.state_dict().items(), other.state_dict().values()):
            assert torch.equal(a, b), f"{k}.{name}"
    # The untrained baseline is the trial's own initialisation, not something trained.
    init = fresh()
    assert all(torch.equal(a, b) for a, b in zip(init.untrained["G"].parameters(), ref.untrained["G"].parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(ref.nets["G"].parameters(), ref.untrained["G"].parameters()))


CYCLE = {"name": "c", "program": "cyclegan", "dataset": "mnist-thick", "model": "cyclegan-resnet",
         "grid": {"loss": ["lsgan"], "optimizer": ["adam"], "seed": [0]}}
REFUSED = [  # (id, override, words that must appear: the field first)
    ("one-domain dataset", {"dataset": "mnist"}, ["dataset:", "'mnist'", "two-domain", "mnist-thick"]),
    ("points dataset", {"dataset": "ring-8"}, ["model 'cyclegan-resnet' cannot fit points dataset 'ring-8'"]),
    ("gan on two domains", {"program": "gan", "model": "dcgan-28"}, ["dataset:", "'mnist-thick'", "program 'gan'",
                                                                     "cyclegan"]),
    ("acgan on two domains", {"program": "acgan", "model": "dcgan-28"}, ["dataset:", "'mnist-thick'"]),
    ("gan model", {"model": "dcgan-28"}, ["model:", "'dcgan-28'", "program 'cyclegan'", "cyclegan-resnet"]),
    ("cyclegan model for a gan", {"program": "gan", "dataset": "mnist"}, ["model:", "'cyclegan-resnet'", "'gan'"]),
    ("pac", {"tricks": {"pac": 2}}, ["tricks.pac:", "d_steps"]),
    ("grid trick", {"grid": {**CYCLE["grid"], "tricks": [{}, {"instance_noise": 0.1}]}},
     ["grid.tricks.1.instance_noise:"]),
    ("pack_seeds", {"pack_seeds": 2}, ["pack_seeds:"]),
    ("eval_every", {"evaluation": {"eval_every": 100}}, ["evaluation.eval_every:"]),
    ("extractor", {"evaluation": {"feature_extractor": "classifier"}}, ["evaluation.feature_extractor"]),
    ("objective param", {"model": {"name": "cyclegan-resnet", "params": {"cycel": 5}}}, ["model", "cycel", "cycle"]),
    ("negative cycle", {"model": {"name": "cyclegan-resnet", "params": {"cycle": -1}}}, ["model.params.cycle:", "[0, 1000]"]),
    ("fractional pool", {"model": {"name": "cyclegan-resnet", "params": {"pool": 2.5}}}, ["model.params.pool:"]),
    ("unknown program", {"program": "pix2pix"}, ["program:", "cyclegan, gan"]),
    ("autoencoder loss", {"grid": {**CYCLE["grid"], "loss": ["began"]}}, ["grid.loss 'began'"]),
]


@pytest.mark.parametrize("over, words", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_validate_refuses_what_cyclegan_cannot_use_naming_the_field(over, words):
    from gan_tasks.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as e:
        parse_config({**CYCLE, **over})
    for w in words:
        assert w in str(e.value), str(e.value)


def test_the_cli_refuses_it_with_exit_2_and_no_traceback(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from flows.cli import app

    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({**CYCLE, "tricks": {"pac": 2}}))
    res = CliRunner().invoke(app, ["validate", str(p)])
    assert res.exit_code == 2 and "tricks.pac" in res.output and "Traceback" not in res.output
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(CYCLE))
    res = CliRunner().invoke(app, ["validate", str(ok)])
    assert res.exit_code == 0 and "cycle 10.0, identity 0.5, pool 50" in res.output and "cyclegan/lsgan/adam" in res.output, res.output


def test_gan_trial_ids_do_not_change_with_programs():
    from gan_tasks.config import expand_grid, parse_config
    from tests.conftest import tiny_config

    plain, explicit = (expand_grid(parse_config(c)) for c in (tiny_config(), {**tiny_config(), "program": "gan"}))
    assert [t.trial_id for t in plain] == [t.trial_id for t in explicit]
    import json

    # The formula of trial ids before programs existed: the dump without (default) tricks, nor the
    # train options added later (update, batch_unit) at their defaults, nor an added dataset's id / shape /
    # classes (None for built-in datasets), nor a search's setting index (None) or plugin code (none).
    old = {"program": True, "tricks": True, "train": {"update", "batch_unit"}, "dataset": {"id", "shape", "classes"},
           "setting": True, "plugins": True}
    dump = json.dumps(plain[0].model_dump(mode="json", exclude=old), sort_keys=True, separators=(",", ":"))
    assert plain[0].trial_id == hashlib.sha256(dump.encode()).hexdigest()[:12]
    cyc = expand_grid(parse_config(CYCLE))[0]
    other = expand_grid(parse_config({**CYCLE, "model": {"name": "cyclegan-resnet", "params": {"pool": 0}}}))[0]
    assert cyc.trial_id != other.trial_id  # the program's settings are part of a CycleGAN trial's id



@pytest.mark.slow
def test_a_trained_trials_fid_kid_rows_carry_their_provenance(thick):
    """A CycleGAN trained 2 steps, evaluated through the sweep's path: every FID/KID row has a provenance
    whose key is its hash, with the sample sizes, the target domain's split and the G-EMA flag."""
    from gan_tasks.config import expand_grid, parse_config
    from gan_tasks.evaluation.evaluate import evaluate_trial
    from gan_tasks.evaluation.provenance import key
    from gan_tasks.training.trial import run_trial
    from tests.evalkit import copy_classifier, mnist_store

    st, _ = thick
    copy_classifier(mnist_store()[0], st)
    cfg = parse_config({**CYCLE, "model": {"name": "cyclegan-resnet", "params": {"width": 4, "blocks": 1}},
                        "train": {"steps": 2, "batch_size": 4, "log_every": 1, "checkpoint_every": 2, "g_ema": 0.9},
                        "evaluation": {"fidelity_samples": 200, "image_metrics": ["fid", "kid"], "reference_seed": 7}})
    trial = expand_grid(cfg)[0]
    assert run_trial(trial, st, "cyc")["status"] == "completed"
    rows = {r["metric"]: r for r in evaluate_trial(trial, st, "cyc", cfg.evaluation)}
    assert {"a2b_fid", "a2b_kid", "b2a_fid", "b2a_kid"} <= set(rows)
    for m in ("a2b_fid", "a2b_kid", "b2a_fid", "b2a_kid"):
        p = json.loads(rows[m]["provenance"])
        assert rows[m]["provenance_key"] == key(p) and set(p) == set(FIELDS)
        assert (p["n_real"], p["n_fake"], p["reference_split"], p["reference_seed"], p["g_ema"]) == \
            (200, 200, f"train_{m[2]}", 7, True)
    assert rows["a2b_cycle_l1"]["provenance"] == ""  # not an image metric of torch-fidelity
