using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace SharpDiffusion.Tests.Fixtures.Torch;

/// <summary>Test-side pickle opcode emitter (what CPython's pickler writes), for building fixtures byte by byte.</summary>
internal sealed class PickleWriter
{
    private readonly MemoryStream _out = new();
    private readonly Dictionary<string, int> _globalMemo = new();
    private int _memo;

    public byte[] ToArray() => _out.ToArray();

    public PickleWriter Op(byte op) { _out.WriteByte(op); return this; }

    public PickleWriter Raw(ReadOnlySpan<byte> bytes) { _out.Write(bytes); return this; }

    public PickleWriter Ascii(string text) => Raw(Encoding.ASCII.GetBytes(text));

    public PickleWriter Proto(int protocol) => Op(0x80).Op((byte)protocol);

    public PickleWriter Stop() => Op((byte)'.');

    public PickleWriter Mark() => Op((byte)'(');

    public PickleWriter None() => Op((byte)'N');

    public PickleWriter Bool(bool v) => Op(v ? (byte)0x88 : (byte)0x89);

    public PickleWriter Int(long v)
    {
        if (v >= 0 && v < 256) return Op((byte)'K').Op((byte)v);
        if (v >= 0 && v < 65536) { Op((byte)'M'); Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); return Raw(b); }
        if (v >= int.MinValue && v <= int.MaxValue) { Op((byte)'J'); Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, (int)v); return Raw(b); }
        return Long(v);
    }

    /// <summary>LONG1: little-endian two's complement, as pickle writes big ints.</summary>
    public PickleWriter Long(BigInteger v)
    {
        var bytes = v.ToByteArray(isUnsigned: false, isBigEndian: false);
        return Op(0x8a).Op((byte)bytes.Length).Raw(bytes);
    }

    public PickleWriter Float(double v)
    {
        Op((byte)'G');
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleBigEndian(b, v);
        return Raw(b);
    }

    public PickleWriter Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        Op((byte)'X');
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(len, bytes.Length);
        return Raw(len).Raw(bytes);
    }

    /// <summary>BINPUT below 256, LONG_BINPUT above, as CPython chooses.</summary>
    public PickleWriter BinPut()
    {
        if (_memo < 256) Op((byte)'q').Op((byte)_memo);
        else Op((byte)'r').Raw(BitConverter.GetBytes(_memo));
        _memo++;
        return this;
    }

    public PickleWriter BinGet(int index) => index < 256 ? Op((byte)'h').Op((byte)index) : Op((byte)'j').Raw(BitConverter.GetBytes(index));

    /// <summary>GLOBAL, memoised the first time and fetched with BINGET afterwards (as CPython does).</summary>
    public PickleWriter Global(string module, string name)
    {
        string key = module + "\n" + name;
        if (_globalMemo.TryGetValue(key, out int index)) return BinGet(index);
        Op((byte)'c').Ascii(module + "\n" + name + "\n");
        _globalMemo[key] = _memo;
        return BinPut();
    }

    public PickleWriter EmptyTuple() => Op((byte)')');
    public PickleWriter Tuple() => Op((byte)'t');
    public PickleWriter Tuple1() => Op(0x85);
    public PickleWriter Tuple2() => Op(0x86);
    public PickleWriter Tuple3() => Op(0x87);
    public PickleWriter EmptyList() => Op((byte)']');
    public PickleWriter Appends() => Op((byte)'e');
    public PickleWriter EmptyDict() => Op((byte)'}');
    public PickleWriter SetItems() => Op((byte)'u');
    public PickleWriter Reduce() => Op((byte)'R');
    public PickleWriter Build() => Op((byte)'b');
    public PickleWriter BinPersId() => Op((byte)'Q');
}
