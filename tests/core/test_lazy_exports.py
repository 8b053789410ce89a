import pytest

import chanlab.adaptive_compression
import chanlab.cellfree
import chanlab.channels
import chanlab.classical
import chanlab.core
import chanlab.metrics
import chanlab.nn
import chanlab.quant


@pytest.mark.parametrize("package", [chanlab.channels, chanlab.metrics, chanlab.core, chanlab.quant, chanlab.nn,
                                     chanlab.adaptive_compression, chanlab.cellfree, chanlab.classical])
def test_every_exported_name_resolves(package):
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018
