namespace SharpDiffusion.Tests.Fixtures.Torch;

/// <summary>
/// Pickles a fixture object tree the way torch.save does (protocol 2): OrderedDicts as REDUCE + SETITEMS + BUILD
/// of <c>_metadata</c>, tensors as <c>_rebuild_tensor_v2</c> with a BINPERSID storage id, numpy scalars with
/// <c>_codecs.encode</c> bytes.
/// </summary>
internal sealed class TorchPickler
{
    private readonly PickleWriter _w = new();
    private readonly IReadOnlyDictionary<string, FixtureStorage> _storages;
    private readonly bool _legacy;

    private TorchPickler(IReadOnlyDictionary<string, FixtureStorage> storages, bool legacy)
    {
        _storages = storages;
        _legacy = legacy;
    }

    /// <param name="legacy">Legacy persistent ids carry a sixth field (view metadata, None).</param>
    public static byte[] Pickle(object? root, IReadOnlyDictionary<string, FixtureStorage> storages, bool legacy)
    {
        var p = new TorchPickler(storages, legacy);
        p._w.Proto(2);
        p.Save(root);
        p._w.Stop();
        return p._w.ToArray();
    }

    /// <summary>A plain pickle of simple values (no tensors), e.g. the legacy header pickles.</summary>
    public static byte[] PickleValue(object? value) => Pickle(value, new Dictionary<string, FixtureStorage>(), legacy: false);

    private void Save(object? v)
    {
        switch (v)
        {
            case null: _w.None(); break;
            case bool b: _w.Bool(b); break;
            case int i: _w.Int(i); break;
            case long l: _w.Int(l); break;
            case System.Numerics.BigInteger bi: _w.Long(bi); break;
            case double d: _w.Float(d); break;
            case string s: _w.Str(s).BinPut(); break;
            case FixtureDict d: SaveDict(d); break;
            case FixtureTuple t: SaveTuple(t.Items); break;
            case List<object?> l:
                _w.EmptyList().BinPut();
                if (l.Count > 0)
                {
                    _w.Mark();
                    foreach (var item in l) Save(item);
                    _w.Appends();
                }
                break;
            case FixtureTensor t: SaveTensor(t); break;
            case FixtureNumpyScalar n: SaveNumpyScalar(n); break;
            case FixtureRawPickle raw: _w.Raw(raw.Opcodes); break;
            default: throw new ArgumentException("cannot pickle " + v.GetType().Name);
        }
    }

    private void SaveTuple(object?[] items)
    {
        if (items.Length == 0) { _w.EmptyTuple(); return; }
        if (items.Length > 3) _w.Mark();
        foreach (var item in items) Save(item);
        switch (items.Length)
        {
            case 1: _w.Tuple1(); break;
            case 2: _w.Tuple2(); break;
            case 3: _w.Tuple3(); break;
            default: _w.Tuple(); break;
        }
        _w.BinPut();
    }

    private void SaveDict(FixtureDict d)
    {
        if (d.Ordered) _w.Global("collections", "OrderedDict").EmptyTuple().Reduce().BinPut();
        else _w.EmptyDict().BinPut();
        if (d.Count > 0)
        {
            _w.Mark();
            foreach (var (k, v) in d)
            {
                Save(k);
                Save(v);
            }
            _w.SetItems();
        }
        if (d.Ordered)
        {
            // state_dict._metadata, as torch's Module.state_dict leaves it: {"": {"version": 1}}
            _w.EmptyDict().BinPut().Str("_metadata").BinPut();
            _w.Global("collections", "OrderedDict").EmptyTuple().Reduce().BinPut();
            _w.Str("").BinPut().EmptyDict().BinPut().Str("version").BinPut().Int(1).Op((byte)'s').Op((byte)'s');
            _w.Op((byte)'s').Build();
        }
    }

    private void SaveTensor(FixtureTensor t)
    {
        var storage = _storages[t.StorageKey];
        _w.Global("torch._utils", t.TorchDType is null ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
        _w.Mark();
        // persistent id ('storage', torch.<Type>, key, 'cpu', numel[, None])
        _w.Mark().Str("storage").BinPut().Global("torch", storage.TypeName).Str(t.StorageKey).BinPut().Str("cpu").BinPut().Int(storage.ElementCount);
        if (t.LegacyView is { } view) _w.Str(view.Key).Int(view.Offset).Int(view.Size).Tuple3();
        else if (_legacy) _w.None();
        _w.Tuple().BinPut().BinPersId();
        _w.Int(t.Offset);
        SaveTuple(t.Shape.Cast<object?>().ToArray());
        SaveTuple(t.Stride.Cast<object?>().ToArray());
        _w.Bool(false);
        _w.Global("collections", "OrderedDict").EmptyTuple().Reduce().BinPut();
        if (t.TorchDType is not null) _w.Global("torch", t.TorchDType);
        _w.Tuple().BinPut().Reduce().BinPut();
    }

    private void SaveNumpyScalar(FixtureNumpyScalar n)
    {
        _w.Global("numpy.core.multiarray", "scalar");
        _w.Global("numpy", "dtype").Str(n.Code).BinPut().Bool(false).Bool(true).Tuple3().BinPut().Reduce().BinPut();
        _w.Mark().Int(3).Str("<").BinPut().None().None().None().Int(-1).Int(-1).Int(0).Tuple().BinPut().Build();
        // bytes in protocol 2: _codecs.encode(latin-1 text, 'latin1')
        _w.Global("_codecs", "encode").Str(new string(n.Raw.Select(b => (char)b).ToArray())).BinPut().Str("latin1").BinPut().Tuple2().BinPut().Reduce().BinPut();
        _w.Tuple2().BinPut().Reduce().BinPut();
    }
}
