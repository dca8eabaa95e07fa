using System.Numerics;
using System.Text;
using SharpDiffusion.Formats.Pickle;
using SharpDiffusion.Formats.Torch;
using SharpDiffusion.Tests.Fixtures.Torch;

namespace SharpDiffusion.Tests.Formats.Pickle;

public class PickleMachineTests
{
    private static object? Load(byte[] pickle, Func<object?, object?>? persistentLoad = null) =>
        new PickleMachine(new MemoryStream(pickle), persistentLoad).Load();

    private static string Refusal(byte[] pickle) => Assert.Throws<PickleFormatException>(() => Load(pickle)).Message;

    [Fact]
    public void Protocol0TextOpcodes()
    {
        string text = "(dp0\nS'a'\np1\nI1\nsS'b'\np2\n(lp3\nF1.5\naL12345678901234567890L\naI-7\naI00\nasVh\\u00e9llo\np4\ng1\nsS'e'\nI01\nsS'esc'\nS'x\\n\\x41\\''\ns(S'k'\nI2\ntp5\n(I3\nI4\nls.";
        var d = Assert.IsType<PickleDict>(Load(Encoding.ASCII.GetBytes(text)));
        Assert.True(d.TryGetValue("a", out var a));
        Assert.Equal(1L, a);
        Assert.True(d.TryGetValue("b", out var b));
        Assert.Equal(new object?[] { 1.5, BigInteger.Parse("12345678901234567890"), -7L, false }, Assert.IsType<List<object?>>(b));
        Assert.True(d.TryGetValue("héllo", out var h));
        Assert.Equal("a", h);
        Assert.True(d.TryGetValue("e", out var e));
        Assert.Equal(true, e);
        Assert.True(d.TryGetValue("esc", out var esc));
        Assert.Equal("x\nA'", esc);
        Assert.True(d.TryGetValue(new PickleTuple(["k", 2L]), out var list));
        Assert.Equal(new object?[] { 3L, 4L }, Assert.IsType<List<object?>>(list));
    }

    [Fact]
    public void Protocol4FramesMemoizeStackGlobalAndSets()
    {
        var w = new PickleWriter().Proto(4).Op(0x95).Raw(new byte[8]);
        void Short(string s) { w.Op(0x8c).Op((byte)s.Length).Ascii(s); }
        Short("collections"); w.Op(0x94);
        Short("OrderedDict"); w.Op(0x94);
        w.Op(0x93).Op(0x94).EmptyTuple().Reduce().Op(0x94);
        w.Mark();
        Short("k"); w.Op(0x94).Op(0x8f).Op(0x94).Mark().Int(1).Int(2).Int(1).Op(0x90);
        Short("f"); w.Mark().Str("x").Str("y").Op(0x91);
        Short("u8"); w.Op(0x8d).Raw(BitConverter.GetBytes(3L)).Ascii("abc");
        Short("b8"); w.Op(0x8e).Raw(BitConverter.GetBytes(2L)).Raw([0xff, 0x00]);
        Short("again"); w.Op((byte)'j').Raw(BitConverter.GetBytes(4)); // LONG_BINGET of the memoised "k"
        w.SetItems().Stop();

        var d = Assert.IsType<PickleDict>(Load(w.ToArray()));
        Assert.Equal("collections.OrderedDict", d.TypeName);
        Assert.True(d.TryGetValue("k", out var set));
        Assert.Equal(new object?[] { 1L, 2L }, Assert.IsType<PickleSet>(set).Items);
        Assert.True(d.TryGetValue("f", out var frozen));
        Assert.True(Assert.IsType<PickleSet>(frozen).Frozen);
        Assert.True(d.TryGetValue("u8", out var u8));
        Assert.Equal("abc", u8);
        Assert.True(d.TryGetValue("b8", out var b8));
        Assert.Equal(new byte[] { 0xff, 0 }, b8);
        Assert.True(d.TryGetValue("again", out var again));
        Assert.Equal("k", again);
    }

    [Fact]
    public void DictAssignmentReplacesInPlaceWithPythonKeyEquality()
    {
        var w = new PickleWriter().Proto(2).EmptyDict().Mark().Int(1).Str("one").Str("b").Int(2).Float(1.0).Str("float one").Bool(true).Str("true").SetItems().Stop();
        var d = Assert.IsType<PickleDict>(Load(w.ToArray()));
        Assert.Equal(2, d.Count);
        Assert.Equal(1L, d.Entries[0].Key);
        Assert.Equal("true", d.Entries[0].Value);
    }

    [Fact]
    public void NumpyScalarsArraysAndCodecs()
    {
        var w = new PickleWriter().Proto(2).Mark();
        // numpy float64 scalar 0.5
        w.Global("numpy.core.multiarray", "scalar").Global("numpy", "dtype").Str("f8").Bool(false).Bool(true).Tuple3().Reduce()
            .Mark().Int(3).Str("<").None().None().None().Int(-1).Int(-1).Int(0).Tuple().Build()
            .Global("_codecs", "encode").Str(Latin1(BitConverter.GetBytes(0.5))).Str("latin1").Tuple2().Reduce().Tuple2().Reduce();
        // numpy array float32 [1.5, -2]
        w.Global("numpy.core.multiarray", "_reconstruct").Global("numpy", "ndarray").Int(0).Tuple1().Global("_codecs", "encode").Str("b").Str("latin1").Tuple2().Reduce().Tuple3().Reduce()
            .Mark().Int(1).Int(2).Tuple1().Global("numpy", "dtype").Str("f4").Bool(false).Bool(true).Tuple3().Reduce()
            .Mark().Int(3).Str("<").None().None().None().Int(-1).Int(-1).Int(0).Tuple().Build()
            .Bool(false).Global("_codecs", "encode").Str(Latin1([.. BitConverter.GetBytes(1.5f), .. BitConverter.GetBytes(-2f)])).Str("latin1").Tuple2().Reduce().Tuple().Build();
        w.Tuple().Stop();
        var t = Assert.IsType<PickleTuple>(Load(w.ToArray()));
        Assert.Equal(0.5, t[0]);
        var array = Assert.IsType<NumpyArray>(t[1]);
        Assert.Equal("<f4", array.DTypeCode);
        Assert.Equal([2L], array.Shape);
        Assert.Equal(8, array.Data.Length);
    }

    private static string Latin1(byte[] bytes) => new(bytes.Select(b => (char)b).ToArray());

    [Fact]
    public void TensorRebuildVariantsGiveTheSameTensor()
    {
        var storage = new PickledStorage("FloatStorage", "0", "cpu", 6);
        object? Pid(object? _) => storage;
        void Args(PickleWriter w) => w.Mark().Str("storage").Tuple1().BinPersId().Int(0).Int(2).Int(3).Tuple2().Int(3).Int(1).Tuple2().Bool(false).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple();

        var v2 = new PickleWriter().Proto(2).Global("torch._utils", "_rebuild_tensor_v2");
        Args(v2);
        var plain = Assert.IsType<PickledTensor>(Load(v2.Reduce().Stop().ToArray(), Pid));
        Assert.Equal([2L, 3], plain.Size);
        Assert.Equal([3L, 1], plain.Stride);

        var param = new PickleWriter().Proto(2).Global("torch._utils", "_rebuild_parameter").Global("torch._utils", "_rebuild_tensor_v2");
        Args(param);
        param.Reduce().Bool(true).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple3().Reduce().Stop();
        Assert.Equal([2L, 3], Assert.IsType<PickledTensor>(Load(param.ToArray(), Pid)).Size);

        var typed = new PickleWriter().Proto(2).Global("torch._tensor", "_rebuild_from_type_v2").Mark().Global("torch._utils", "_rebuild_tensor_v2").Global("torch.nn.parameter", "Parameter");
        Args(typed);
        typed.EmptyDict().Tuple().Reduce().Stop();
        Assert.Equal([2L, 3], Assert.IsType<PickledTensor>(Load(typed.ToArray(), Pid)).Size);

        var notTensor = new PickleWriter().Proto(2).Global("torch._tensor", "_rebuild_from_type_v2").Mark().Global("collections", "OrderedDict").Global("torch", "Tensor").EmptyTuple().EmptyDict().Tuple().Reduce().Stop();
        Assert.Contains("did not rebuild a tensor", Assert.Throws<PickleFormatException>(() => Load(notTensor.ToArray(), Pid)).Message);
    }

    [Fact]
    public void LightningCheckpointCallbackIsAnInertObject()
    {
        var w = new PickleWriter().Proto(2).EmptyDict().Str("callbacks")
            .Global("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint").EmptyTuple().Op(0x81)
            .EmptyDict().Str("monitor").Str("val/loss").Op((byte)'s').Build()
            .Op((byte)'s').Str("hp").Global("collections", "defaultdict").None().Tuple1().Reduce().Mark().Str("lr").Float(1e-4).SetItems().Op((byte)'s').Stop();
        var root = Load(w.ToArray());
        var flat = TorchObjectFlattener.Flatten(root);
        Assert.Equal("val/loss", flat.Metadata["callbacks.monitor"]);
        Assert.Equal("0.0001", flat.Metadata["hp.lr"]);
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 0x02, 0x82, 0x01, 0x2e }, "extension registry")]
    [InlineData(new byte[] { 0x80, 0x06, 0x4e, 0x2e }, "unsupported pickle protocol 6")]
    [InlineData(new byte[] { 0x80, 0x02, 0xff }, "unknown pickle opcode 0xff")]
    [InlineData(new byte[] { 0x80, 0x02, 0x68, 0x05, 0x2e }, "memo entry 5 is not defined")]
    [InlineData(new byte[] { 0x80, 0x02, 0x7d, 0x5d, 0x4b, 0x01, 0x73, 0x2e }, "unhashable list")]
    [InlineData(new byte[] { 0x80, 0x02, 0x58, 0x00, 0xca, 0x9a, 0x3b, 0x61, 0x2e }, "1000000000 bytes announced")]
    [InlineData(new byte[] { 0x80, 0x02, 0x4e, 0x4e, 0x2e }, "STOP with 2 items")]
    [InlineData(new byte[] { 0x80, 0x02, 0x4e }, "truncated pickle")]
    [InlineData(new byte[] { 0x80, 0x05, 0x97, 0x2e }, "NEXT_BUFFER")]
    [InlineData(new byte[] { 0x80, 0x02, 0x28, 0x61, 0x2e }, "stack underflow")]
    [InlineData(new byte[] { 0x80, 0x02, 0x4b, 0x01, 0x4b, 0x02, 0x61, 0x2e }, "APPEND on int")]
    [InlineData(new byte[] { 0x80, 0x02, 0x4b, 0x01, 0x51, 0x2e }, "persistent ids are not allowed")]
    public void MalformedPicklesAreRefused(byte[] pickle, string problem) => Assert.Contains(problem, Refusal(pickle));

    [Fact]
    public void SelfReferenceAndDeepNestingStopTheFlattener()
    {
        // l = []; l.append(l)
        var cyclic = Load([0x80, 0x02, 0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e]);
        Assert.Contains("nested deeper", Assert.Throws<PickleFormatException>(() => TorchObjectFlattener.Flatten(cyclic)).Message);

        var w = new PickleWriter().Proto(2);
        for (int i = 0; i < 5000; i++) w.EmptyList();
        for (int i = 0; i < 4999; i++) w.Op((byte)'a');
        var deep = Load(w.Stop().ToArray());
        Assert.Contains("nested deeper", Assert.Throws<PickleFormatException>(() => TorchObjectFlattener.Flatten(deep)).Message);
    }

    [Fact]
    public void SharedSubtreesCannotExplodeTheFlattener()
    {
        // x0 = [1]; x(i+1) = [xi, xi]: 2^40 paths from 40 levels.
        var w = new PickleWriter().Proto(2).EmptyList().Int(1).Op((byte)'a');
        for (int i = 0; i < 40; i++) w.BinPut().Op((byte)'0').EmptyList().BinGet(i).Op((byte)'a').BinGet(i).Op((byte)'a');
        var root = Load(w.Stop().ToArray());
        Assert.Contains("more than", Assert.Throws<PickleFormatException>(() => TorchObjectFlattener.Flatten(root)).Message);
    }
}
