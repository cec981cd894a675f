from leanconv.cli import main


def test_ops_table(capsys):
    assert main(["ops", "--in-channels", "16", "--out-channels", "16", "--size", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "16->16 channels, 3x3, stride 1, input 1x16x8x8"
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    for spec in ("standard", "hetconv:p=4", "compconv:c0=128", "dwsep", "deform"):
        assert spec in rows
    # HetConv p=4: 16 * (4 * 9 + 12) = 768 parameters; standard has no analytic formula
    assert rows["hetconv:p=4"][2] == "768" and rows["standard"][4] == "-"
    assert rows["standard"][5] == "1.000"


def test_ops_chosen_specs(capsys):
    assert main(["ops", "--in-channels", "8", "--out-channels", "8", "--size", "4",
                 "--kernel-size", "5", "--spec", "standard", "--spec", "stacked"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["standard", "stacked"]
    assert float(lines[3].split()[-1]) == 18 / 25  # two 3x3 convs for one 5x5


def test_bad_spec_is_a_clean_error(capsys):
    assert main(["ops", "--spec", "hetconv:p=5", "--in-channels", "16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leanconv ops: error: ")
    assert "in_channels=16 is not divisible by p=5" in err and "Traceback" not in err
