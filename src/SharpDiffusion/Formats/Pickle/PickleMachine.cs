using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;
using Op = SharpDiffusion.Formats.Pickle.PickleOpcode;

namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// A pickle interpreter (protocols 0-5) that builds plain data only. Globals are resolved against
/// <see cref="SafeGlobals"/>; anything else stops the read with a <see cref="PickleFormatException"/> naming it.
/// Reads one pickle from the stream's position up to and including STOP, never beyond.
/// </summary>
public sealed class PickleMachine
{
    /// <summary>Limits that keep a hostile pickle from exhausting memory.</summary>
    public const int MaxMemoEntries = 4_000_000;
    public const int MaxStackDepth = 4_000_000;
    public const int MaxMarkDepth = 100_000;
    public const int MaxLineLength = 65_536;

    private readonly Stream _stream;
    private readonly long _length;
    private readonly Func<object?, object?> _persistentLoad;
    private readonly List<object?> _stack = new();
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();

    /// <param name="stream">A seekable stream positioned at the pickle (its length bounds every read).</param>
    /// <param name="persistentLoad">Resolves persistent ids (PERSID, BINPERSID); null refuses them.</param>
    public PickleMachine(Stream stream, Func<object?, object?>? persistentLoad = null)
    {
        _stream = stream;
        _length = stream.Length; // asking a FileStream each time costs a system call
        _persistentLoad = persistentLoad ?? (_ => throw new PickleFormatException("persistent ids are not allowed here"));
    }

    /// <summary>Unpickles one object. Throws <see cref="PickleFormatException"/> for anything malformed or refused.</summary>
    public object? Load()
    {
        _stack.Clear();
        _marks.Clear();
        _memo.Clear();
        while (true)
        {
            byte op = ReadByte();
            if (op == Op.Stop)
            {
                if (_stack.Count != 1 || _marks.Count != 0)
                    throw new PickleFormatException($"STOP with {_stack.Count} items on the stack");
                return _stack[0];
            }
            Execute(op);
            if (_stack.Count > MaxStackDepth) throw new PickleFormatException($"stack deeper than {MaxStackDepth}");
        }
    }

    private void Execute(byte op)
    {
        switch (op)
        {
            case Op.Proto:
                int proto = ReadByte();
                if (proto > 5) throw new PickleFormatException($"unsupported pickle protocol {proto}");
                break;
            case Op.Frame:
                ReadBytes(8); // a framing hint only
                break;
            case Op.Mark:
                if (_marks.Count >= MaxMarkDepth) throw new PickleFormatException($"more than {MaxMarkDepth} nested marks");
                _marks.Push(_stack.Count);
                break;
            case Op.Pop:
                if (_marks.Count > 0 && _marks.Peek() == _stack.Count) _marks.Pop(); // POP of a bare MARK
                else PopValue();
                break;
            case Op.PopMark:
                PopMarked();
                break;
            case Op.Dup:
                Push(Peek());
                break;

            case Op.None: Push(null); break;
            case Op.NewTrue: Push(true); break;
            case Op.NewFalse: Push(false); break;
            case Op.Int: Push(ParseIntLine(ReadLine())); break;
            case Op.BinInt: Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;
            case Op.BinInt1: Push((long)ReadByte()); break;
            case Op.BinInt2: Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break;
            case Op.Long: Push(ParseLongLine(ReadLine())); break;
            case Op.Long1: Push(DecodeLong(ReadBytes(ReadByte()))); break;
            case Op.Long4: Push(DecodeLong(ReadBytes(ReadLength(4)))); break;
            case Op.Float: Push(ParseFloatLine(ReadLine())); break;
            case Op.BinFloat: Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break;

            case Op.String: Push(DecodeStr(UnquoteStringLine(ReadLine()))); break;
            case Op.BinString: Push(DecodeStr(ReadBytes(ReadLength(4)))); break;
            case Op.ShortBinString: Push(DecodeStr(ReadBytes(ReadByte()))); break;
            case Op.Unicode: Push(DecodeRawUnicodeEscape(ReadLine())); break;
            case Op.BinUnicode: Push(DecodeUtf8(ReadBytes(ReadLength(4)))); break;
            case Op.ShortBinUnicode: Push(DecodeUtf8(ReadBytes(ReadByte()))); break;
            case Op.BinUnicode8: Push(DecodeUtf8(ReadBytes(ReadLength(8)))); break;
            case Op.BinBytes: Push(ReadBytes(ReadLength(4))); break;
            case Op.ShortBinBytes: Push(ReadBytes(ReadByte())); break;
            case Op.BinBytes8: Push(ReadBytes(ReadLength(8))); break;
            case Op.ByteArray8: Push(ReadBytes(ReadLength(8))); break;
            case Op.NextBuffer: throw new PickleFormatException("out-of-band buffers (NEXT_BUFFER) are not supported");
            case Op.ReadOnlyBuffer: Peek(); break;

            case Op.EmptyTuple: Push(PickleTuple.Empty); break;
            case Op.Tuple: Push(new PickleTuple(PopMarked())); break;
            case Op.Tuple1: Push(new PickleTuple([PopValue()])); break;
            case Op.Tuple2: { var b = PopValue(); var a = PopValue(); Push(new PickleTuple([a, b])); break; }
            case Op.Tuple3: { var c = PopValue(); var b = PopValue(); var a = PopValue(); Push(new PickleTuple([a, b, c])); break; }
            case Op.EmptyList: Push(new List<object?>()); break;
            case Op.List: Push(new List<object?>(PopMarked())); break;
            case Op.EmptyDict: Push(new PickleDict()); break;
            case Op.Dict:
            {
                var items = PopMarked();
                var d = new PickleDict();
                SetItemsFrom(d, items);
                Push(d);
                break;
            }
            case Op.EmptySet: Push(new PickleSet()); break;
            case Op.FrozenSet:
            {
                var set = new PickleSet { Frozen = true };
                foreach (var item in PopMarked()) set.Add(item);
                Push(set);
                break;
            }
            case Op.Append:
            {
                var v = PopValue();
                AsList(Peek(), "APPEND").Add(v);
                break;
            }
            case Op.Appends:
            {
                var items = PopMarked();
                AsList(Peek(), "APPENDS").AddRange(items);
                break;
            }
            case Op.SetItem:
            {
                var v = PopValue();
                var k = PopValue();
                AsDict(Peek(), "SETITEM").Set(k, v);
                break;
            }
            case Op.SetItems:
            {
                var items = PopMarked();
                SetItemsFrom(AsDict(Peek(), "SETITEMS"), items);
                break;
            }
            case Op.AddItems:
            {
                var items = PopMarked();
                if (Peek() is not PickleSet { Frozen: false } target) throw new PickleFormatException("ADDITEMS on " + PickleValues.TypeName(Peek()));
                foreach (var item in items) target.Add(item);
                break;
            }

            case Op.Put: MemoPut(ParseMemoIndex(ReadLine())); break;
            case Op.BinPut: MemoPut(ReadByte()); break;
            case Op.LongBinPut: MemoPut(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))); break;
            case Op.Memoize: MemoPut(_memo.Count); break;
            case Op.Get: Push(MemoGet(ParseMemoIndex(ReadLine()))); break;
            case Op.BinGet: Push(MemoGet(ReadByte())); break;
            case Op.LongBinGet: Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break;

            case Op.Global:
            {
                string module = DecodeAsciiLine(ReadLine());
                string name = DecodeAsciiLine(ReadLine());
                Push(ResolveGlobal(module, name));
                break;
            }
            case Op.StackGlobal:
            {
                var name = PopValue();
                var module = PopValue();
                if (module is not string m || name is not string n)
                    throw new PickleFormatException("STACK_GLOBAL needs two strings");
                Push(ResolveGlobal(m, n));
                break;
            }
            case Op.Inst:
            {
                var cls = ResolveGlobal(DecodeAsciiLine(ReadLine()), DecodeAsciiLine(ReadLine()));
                Push(SafeGlobals.Call(cls, new PickleTuple(PopMarked())));
                break;
            }
            case Op.Obj:
            {
                var items = PopMarked();
                if (items.Length == 0 || items[0] is not PickleGlobal cls) throw new PickleFormatException("OBJ without a class");
                Push(SafeGlobals.Call(cls, new PickleTuple(items[1..])));
                break;
            }
            case Op.Reduce:
            {
                var args = PopValue();
                var callable = PopValue();
                if (callable is not PickleGlobal g) throw new PickleFormatException("REDUCE on " + PickleValues.TypeName(callable));
                if (args is not PickleTuple t) throw new PickleFormatException("REDUCE arguments are " + PickleValues.TypeName(args));
                Push(SafeGlobals.Call(g, t));
                break;
            }
            case Op.NewObj:
            {
                var args = PopValue();
                var cls = PopValue();
                if (cls is not PickleGlobal g || args is not PickleTuple t) throw new PickleFormatException("NEWOBJ needs a class and a tuple");
                Push(SafeGlobals.New(g, t));
                break;
            }
            case Op.NewObjEx:
            {
                var kwargs = PopValue();
                var args = PopValue();
                var cls = PopValue();
                if (cls is not PickleGlobal g || args is not PickleTuple t || kwargs is not PickleDict)
                    throw new PickleFormatException("NEWOBJ_EX needs a class, a tuple and a dict");
                Push(SafeGlobals.New(g, t));
                break;
            }
            case Op.Build:
            {
                var state = PopValue();
                Build(Peek(), state);
                break;
            }
            case Op.PersId: Push(_persistentLoad(DecodeAsciiLine(ReadLine()))); break;
            case Op.BinPersId: Push(_persistentLoad(PopValue())); break;
            case Op.Ext1 or Op.Ext2 or Op.Ext4:
                throw new PickleFormatException("extension registry opcodes (EXT1/EXT2/EXT4) are refused");
            default:
                throw new PickleFormatException($"unknown pickle opcode 0x{op:x2} at byte {_stream.Position - 1}");
        }
    }

    private static PickleGlobal ResolveGlobal(string module, string name) =>
        SafeGlobals.Resolve(module, name) ?? throw new PickleFormatException(
            $"refuses to load global '{module}.{name}' (only tensors, containers and plain data are allowed)");

    private static void Build(object? target, object? state)
    {
        switch (target)
        {
            case PickleObject o:
                o.State = state;
                break;
            case NumpyArray a:
                NumpyArrayState.Apply(a, state);
                break;
            case PickleDict or List<object?> or PickleSet or PickledTensor:
                break; // attributes such as a state dict's _metadata carry no tensor data
            default:
                throw new PickleFormatException("BUILD on " + PickleValues.TypeName(target));
        }
    }

    private static void SetItemsFrom(PickleDict d, object?[] items)
    {
        if (items.Length % 2 != 0) throw new PickleFormatException("odd number of items for a dict");
        for (int i = 0; i < items.Length; i += 2) d.Set(items[i], items[i + 1]);
    }

    private static List<object?> AsList(object? v, string op) =>
        v as List<object?> ?? throw new PickleFormatException($"{op} on {PickleValues.TypeName(v)}");

    private static PickleDict AsDict(object? v, string op) =>
        v as PickleDict ?? throw new PickleFormatException($"{op} on {PickleValues.TypeName(v)}");

    private void Push(object? v) => _stack.Add(v);

    private object? Peek()
    {
        int floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor) throw new PickleFormatException("stack underflow");
        return _stack[^1];
    }

    private object? PopValue()
    {
        var v = Peek();
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object?[] PopMarked()
    {
        if (_marks.Count == 0) throw new PickleFormatException("no MARK on the stack");
        int start = _marks.Pop();
        var items = _stack.GetRange(start, _stack.Count - start).ToArray();
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private void MemoPut(long index)
    {
        if (_memo.Count >= MaxMemoEntries && !_memo.ContainsKey(index))
            throw new PickleFormatException($"memo larger than {MaxMemoEntries} entries");
        _memo[index] = Peek();
    }

    private object? MemoGet(long index) =>
        _memo.TryGetValue(index, out var v) ? v : throw new PickleFormatException($"memo entry {index} is not defined");

    private long Remaining => _length - _stream.Position;

    private byte ReadByte()
    {
        int b = _stream.ReadByte();
        if (b < 0) throw new PickleFormatException("truncated pickle (no STOP before the end of the data)");
        return (byte)b;
    }

    private long ReadLength(int width)
    {
        var bytes = ReadBytes(width);
        long n = width == 4 ? BinaryPrimitives.ReadInt32LittleEndian(bytes) : BinaryPrimitives.ReadInt64LittleEndian(bytes);
        if (n < 0) throw new PickleFormatException($"negative length {n}");
        return n;
    }

    private byte[] ReadBytes(long count)
    {
        if (count > Remaining || count > Array.MaxLength)
            throw new PickleFormatException($"truncated pickle: {count} bytes announced, {Remaining} left");
        var buf = new byte[count];
        _stream.ReadExactly(buf);
        return buf;
    }

    private byte[] ReadLine()
    {
        var line = new List<byte>();
        while (true)
        {
            byte b = ReadByte();
            if (b == '\n') return line.ToArray();
            if (line.Count >= MaxLineLength) throw new PickleFormatException($"text argument longer than {MaxLineLength} bytes");
            line.Add(b);
        }
    }

    private static string DecodeAsciiLine(byte[] line)
    {
        foreach (var b in line)
            if (b < 0x20 || b > 0x7e) throw new PickleFormatException("non-ASCII text in a protocol 0 argument");
        return Encoding.ASCII.GetString(line);
    }

    private static long ParseMemoIndex(byte[] line) =>
        long.TryParse(DecodeAsciiLine(line), NumberStyles.None, CultureInfo.InvariantCulture, out long i)
            ? i : throw new PickleFormatException("bad memo index");

    private static object ParseIntLine(byte[] line)
    {
        string s = DecodeAsciiLine(line);
        if (s == "00") return false;
        if (s == "01") return true;
        return ParseInteger(s);
    }

    private static object ParseLongLine(byte[] line)
    {
        string s = DecodeAsciiLine(line);
        if (s.EndsWith('L')) s = s[..^1];
        return ParseInteger(s);
    }

    private static object ParseInteger(string s)
    {
        if (s.Length > 4300) throw new PickleFormatException("integer literal too long"); // Python's own limit
        if (!BigInteger.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
            throw new PickleFormatException($"bad integer literal '{Truncate(s)}'");
        return Narrow(v);
    }

    private static object ParseFloatLine(byte[] line)
    {
        string s = DecodeAsciiLine(line);
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return d;
        return s.ToLowerInvariant() switch
        {
            "nan" => double.NaN,
            "inf" => double.PositiveInfinity,
            "-inf" => double.NegativeInfinity,
            _ => throw new PickleFormatException($"bad float literal '{Truncate(s)}'"),
        };
    }

    private static object DecodeLong(byte[] bytes) => bytes.Length == 0 ? 0L : Narrow(new BigInteger(bytes, isUnsigned: false, isBigEndian: false));

    private static object Narrow(BigInteger v) => v >= long.MinValue && v <= long.MaxValue ? (object)(long)v : v;

    private static string DecodeUtf8(byte[] bytes)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new PickleFormatException("string is not valid UTF-8");
        }
    }

    /// <summary>Python 2 str (STRING/BINSTRING): torch.load decodes these as UTF-8; Latin-1 when that fails.</summary>
    private static string DecodeStr(byte[] bytes)
    {
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return Encoding.Latin1.GetString(bytes);
        }
    }

    /// <summary>Protocol 0 STRING: a quoted Python literal with backslash escapes.</summary>
    private static byte[] UnquoteStringLine(byte[] line)
    {
        if (line.Length < 2 || (line[0] != '\'' && line[0] != '"') || line[^1] != line[0])
            throw new PickleFormatException("STRING argument is not quoted");
        var output = new List<byte>(line.Length);
        for (int i = 1; i < line.Length - 1; i++)
        {
            byte b = line[i];
            if (b != '\\') { output.Add(b); continue; }
            if (++i >= line.Length - 1) throw new PickleFormatException("STRING ends in a backslash");
            switch ((char)line[i])
            {
                case 'n': output.Add((byte)'\n'); break;
                case 't': output.Add((byte)'\t'); break;
                case 'r': output.Add((byte)'\r'); break;
                case '0': output.Add(0); break;
                case '\\' or '\'' or '"': output.Add(line[i]); break;
                case 'x':
                    if (i + 2 > line.Length - 2
                        || !byte.TryParse(Encoding.ASCII.GetString(line, i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte hex))
                        throw new PickleFormatException("bad \\x escape in STRING");
                    output.Add(hex);
                    i += 2;
                    break;
                default: output.Add((byte)'\\'); output.Add(line[i]); break;
            }
        }
        return output.ToArray();
    }

    /// <summary>Protocol 0 UNICODE: raw-unicode-escape (Latin-1 bytes, \uXXXX and \UXXXXXXXX escapes).</summary>
    private static string DecodeRawUnicodeEscape(byte[] line)
    {
        var sb = new StringBuilder(line.Length);
        for (int i = 0; i < line.Length; i++)
        {
            if (line[i] == '\\' && i + 1 < line.Length && (line[i + 1] == 'u' || line[i + 1] == 'U'))
            {
                int digits = line[i + 1] == 'u' ? 4 : 8;
                if (i + 2 + digits > line.Length
                    || !int.TryParse(Encoding.ASCII.GetString(line, i + 2, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int cp)
                    || cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                    throw new PickleFormatException("bad \\u escape in UNICODE");
                sb.Append(char.ConvertFromUtf32(cp));
                i += 1 + digits;
            }
            else sb.Append((char)line[i]);
        }
        return sb.ToString();
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
