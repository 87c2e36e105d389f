"""pinned_requirements: the distributions a pickled model needs, pinned, without a subprocess."""

from __future__ import annotations

import importlib.metadata as metadata
import subprocess
from unittest import mock

import pytest

from jupyreg.lineage.requirements import pinned_requirements


def _pin(dist: str) -> str:
    return f"{dist}=={metadata.version(dist)}"


@pytest.fixture(scope="module")
def logistic_regression():
    np = pytest.importorskip("numpy")
    linear_model = pytest.importorskip("sklearn.linear_model")
    x = np.arange(20, dtype=float).reshape(10, 2)
    return linear_model.LogisticRegression().fit(x, [0, 1] * 5)


def test_sklearn_model_pins_numpy_and_scikit_learn(logistic_regression):
    pins = pinned_requirements(logistic_regression)
    assert _pin("numpy") in pins
    assert _pin("scikit-learn") in pins
    assert pins == sorted(set(pins))


def test_no_stdlib_mlflow_or_jupyreg(logistic_regression):
    pins = pinned_requirements({"model": logistic_regression, "when": __import__("datetime")})
    names = {pin.partition("==")[0].lower() for pin in pins}
    assert not names & {"mlflow", "mlflow-skinny", "jupyreg", "datetime"}


def test_none_and_plain_python_objects_need_nothing():
    assert pinned_requirements(None) == []
    assert pinned_requirements({"a": [1, 2.0, "x"]}) == []


def test_lambda_inside_model_does_not_stop_the_walk(logistic_regression):
    pipeline = pytest.importorskip("sklearn.pipeline")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    model = pipeline.make_pipeline(
        preprocessing.FunctionTransformer(lambda x: x), logistic_regression
    )
    pins = pinned_requirements(model)
    assert _pin("numpy") in pins and _pin("scikit-learn") in pins


def test_unpicklable_model_falls_back_to_its_class_hierarchy(logistic_regression):
    class Unpicklable(type(logistic_regression)):
        def __reduce_ex__(self, protocol):
            raise TypeError("cannot pickle")

    assert _pin("scikit-learn") in pinned_requirements(Unpicklable())


def test_distribution_named_differently_from_its_module():
    yaml = pytest.importorskip("yaml")
    assert pinned_requirements(yaml.YAMLObject) == [_pin("PyYAML")]


def test_namespace_package_resolves_to_the_providing_distribution():
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    assert pinned_requirements(descriptor_pb2.FileDescriptorProto()) == [_pin("protobuf")]


def test_large_arrays_are_not_copied_and_no_subprocess_runs():
    np = pytest.importorskip("numpy")
    with mock.patch.object(subprocess, "Popen", side_effect=AssertionError("subprocess")):
        assert pinned_requirements({"weights": np.zeros(4_000_000)}) == [_pin("numpy")]
