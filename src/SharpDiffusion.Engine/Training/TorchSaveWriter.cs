using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// Writes <c>torch.save</c>'s zip format (the counterpart of the safe torch reader): <c>archive/data.pkl</c> (pickle
/// protocol 2), one stored entry per tensor under <c>archive/data/</c>, <c>archive/version</c> and
/// <c>archive/byteorder</c>. Values are only dicts, tuples, lists, strings, numbers, booleans, None, float32 tensors
/// (<c>torch._utils._rebuild_tensor_v2</c> over a <c>FloatStorage</c>) and empty <c>OrderedDict</c>s, so
/// <c>torch.load(weights_only=True)</c> accepts the file. Written to a temporary file and renamed.
/// </summary>
public static class TorchSaveWriter
{
    /// <summary>A pickle tuple.</summary>
    public sealed record Tuple(params object?[] Items);

    /// <summary>A float32 tensor, row-major.</summary>
    public sealed record FloatTensor(float[] Data, long[] Shape);

    /// <summary>An insertion-ordered dict; keys are strings or integers.</summary>
    public sealed class Dict : List<KeyValuePair<object, object?>>
    {
        public void Add(object key, object? value) => Add(new KeyValuePair<object, object?>(key, value));
    }

    public static void Write(string path, object? root)
    {
        var tensors = new List<FloatTensor>();
        var pickle = new MemoryStream();
        pickle.Write([0x80, 2]); // PROTO 2
        WriteValue(pickle, root, tensors);
        pickle.WriteByte((byte)'.'); // STOP

        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temp = Path.Combine(folder, Path.GetFileName(path) + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.ReadWrite))
            using (var zip = new ZipArchive(stream, ZipArchiveMode.Create))
            {
                Entry(zip, "archive/data.pkl", pickle.ToArray());
                Entry(zip, "archive/byteorder", Encoding.ASCII.GetBytes("little"));
                for (int i = 0; i < tensors.Count; i++)
                {
                    var bytes = new byte[tensors[i].Data.Length * 4];
                    for (int j = 0; j < tensors[i].Data.Length; j++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(j * 4), tensors[i].Data[j]);
                    Entry(zip, "archive/data/" + i.ToString(CultureInfo.InvariantCulture), bytes);
                }
                Entry(zip, "archive/version", Encoding.ASCII.GetBytes("3\n"));
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static void Entry(ZipArchive zip, string name, byte[] bytes)
    {
        var entry = zip.CreateEntry(name, CompressionLevel.NoCompression);
        using var s = entry.Open();
        s.Write(bytes);
    }

    private static void WriteValue(Stream s, object? value, List<FloatTensor> tensors)
    {
        switch (value)
        {
            case null: s.WriteByte((byte)'N'); break;
            case bool b: s.WriteByte(b ? (byte)0x88 : (byte)0x89); break;
            case int i: WriteInt(s, i); break;
            case long l: WriteInt(s, l); break;
            case double d:
                s.WriteByte((byte)'G');
                Span<byte> buffer = stackalloc byte[8];
                BinaryPrimitives.WriteDoubleBigEndian(buffer, d);
                s.Write(buffer);
                break;
            case string text: WriteString(s, text); break;
            case Tuple tuple:
                s.WriteByte((byte)'(');
                foreach (var item in tuple.Items) WriteValue(s, item, tensors);
                s.WriteByte((byte)'t');
                break;
            case Dict dict:
                s.WriteByte((byte)'}');
                if (dict.Count == 0) break;
                s.WriteByte((byte)'(');
                foreach (var (k, v) in dict)
                {
                    WriteValue(s, k, tensors);
                    WriteValue(s, v, tensors);
                }
                s.WriteByte((byte)'u');
                break;
            case FloatTensor tensor: WriteTensor(s, tensor, tensors); break;
            case System.Collections.IEnumerable list:
                s.WriteByte((byte)']');
                s.WriteByte((byte)'(');
                foreach (var item in list) WriteValue(s, item, tensors);
                s.WriteByte((byte)'e');
                break;
            default: throw new ArgumentException($"cannot pickle a {value.GetType().Name}");
        }
    }

    private static void WriteInt(Stream s, long value)
    {
        if (value is >= int.MinValue and <= int.MaxValue)
        {
            s.WriteByte((byte)'J');
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(b, (int)value);
            s.Write(b);
        }
        else
        {
            s.Write([0x8a, 8]); // LONG1, 8 bytes little-endian two's complement
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(b, value);
            s.Write(b);
        }
    }

    private static void WriteString(Stream s, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        s.WriteByte((byte)'X');
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, bytes.Length);
        s.Write(b);
        s.Write(bytes);
    }

    private static void Global(Stream s, string module, string name) => s.Write(Encoding.ASCII.GetBytes($"c{module}\n{name}\n"));

    /// <summary><c>_rebuild_tensor_v2(persistent_load(('storage', FloatStorage, key, 'cpu', numel)), 0, size, stride, False, OrderedDict())</c>.</summary>
    private static void WriteTensor(Stream s, FloatTensor tensor, List<FloatTensor> tensors)
    {
        long count = tensor.Shape.Aggregate(1L, (a, b) => a * b);
        if (count != tensor.Data.Length) throw new ArgumentException($"tensor of shape [{string.Join(", ", tensor.Shape)}] has {tensor.Data.Length} values");
        string key = tensors.Count.ToString(CultureInfo.InvariantCulture);
        tensors.Add(tensor);
        var stride = new long[tensor.Shape.Length];
        long step = 1;
        for (int i = stride.Length - 1; i >= 0; i--)
        {
            stride[i] = step;
            step *= tensor.Shape[i];
        }
        Global(s, "torch._utils", "_rebuild_tensor_v2");
        s.WriteByte((byte)'(');
        s.WriteByte((byte)'(');
        WriteString(s, "storage");
        Global(s, "torch", "FloatStorage");
        WriteString(s, key);
        WriteString(s, "cpu");
        WriteInt(s, count);
        s.WriteByte((byte)'t');
        s.WriteByte((byte)'Q'); // BINPERSID
        WriteInt(s, 0);
        WriteValue(s, new Tuple([.. tensor.Shape.Select(d => (object?)d)]), tensors);
        WriteValue(s, new Tuple([.. stride.Select(d => (object?)d)]), tensors);
        s.WriteByte(0x89); // requires_grad False
        Global(s, "collections", "OrderedDict");
        s.WriteByte((byte)')');
        s.WriteByte((byte)'R');
        s.WriteByte((byte)'t');
        s.WriteByte((byte)'R');
    }
}
