using System.Globalization;
using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Hypernetworks;

/// <summary>
/// An A1111 hypernetwork: per attention input width d, a pair of <see cref="HypernetworkModule"/>s transforming the
/// context before the key and value projections. Read from a file whose tensors are
/// <c>&lt;d&gt;.&lt;0|1&gt;.linear.&lt;j&gt;.weight|bias</c> (the torch reader's flattening of A1111's
/// <c>{d: (k_state_dict, v_state_dict), ...}</c>) with the layer description in the metadata.
/// </summary>
public sealed class Hypernetwork : IDisposable
{
    /// <summary>A1111's hypernetwork short hash: the first 10 hex digits of the file's SHA-256.</summary>
    public const int ShortHashLength = 10;

    private readonly SortedDictionary<int, (HypernetworkModule K, HypernetworkModule V)> _layers;

    private Hypernetwork(string name, HypernetworkStructure structure, SortedDictionary<int, (HypernetworkModule, HypernetworkModule)> layers)
    {
        Name = name;
        Structure = structure;
        _layers = layers;
    }

    /// <summary>The stored <c>name</c>, or the file name without extension (A1111's <c>Hypernetwork.name</c>).</summary>
    public string Name { get; }

    public HypernetworkStructure Structure { get; }

    /// <summary>Training steps (<c>step</c>), when recorded.</summary>
    public long? Step { get; private init; }

    public string? FilePath { get; private init; }

    /// <summary>SHA-256 of the file (lower-case hex); null when the source is not a plain file.</summary>
    public string? Sha256 { get; private init; }

    public string? ShortHash => Sha256?[..ShortHashLength];

    /// <summary>The input widths this hypernetwork has modules for, ascending.</summary>
    public IReadOnlyCollection<int> Widths => _layers.Keys;

    /// <summary>The (k, v) modules for inputs of width <paramref name="width"/>, or null.</summary>
    public (HypernetworkModule K, HypernetworkModule V)? ForWidth(int width) =>
        _layers.TryGetValue(width, out var pair) ? pair : null;

    /// <summary>A new hypernetwork of <paramref name="structure"/> with (k, v) modules for each width (training initialises the weights).</summary>
    public static Hypernetwork Create(string name, HypernetworkStructure structure, IEnumerable<int> widths)
    {
        var layers = new SortedDictionary<int, (HypernetworkModule, HypernetworkModule)>();
        foreach (int width in widths.Distinct()) layers[width] = (new HypernetworkModule(width, structure), new HypernetworkModule(width, structure));
        return new Hypernetwork(name, structure, layers);
    }

    /// <param name="file">The opened hypernetwork file (pickle flattened by the torch reader, or safetensors with metadata).</param>
    /// <param name="name">Overrides the name; default: stored <c>name</c>, else the file name without extension.</param>
    /// <exception cref="InvalidModelFileException">Not a hypernetwork, or weights that do not fit its layer structure.</exception>
    public static Hypernetwork Load(IModelFile file, string? name = null)
    {
        var structure = HypernetworkStructure.FromMetadata(file);
        var tensors = file.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var widths = new SortedSet<int>();
        var foreign = new List<string>();
        foreach (var t in file.Tensors)
        {
            var parts = t.Name.Split('.', 3);
            if (parts.Length == 3 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int width) && width > 0 && parts[1] is "0" or "1")
                widths.Add(width);
            else
                foreign.Add(t.Name);
        }
        if (foreign.Count > 0)
            throw new InvalidModelFileException(file.Path, $"not a hypernetwork: tensor(s) {string.Join(", ", foreign.Take(4))}{(foreign.Count > 4 ? ", ..." : "")} are not <width>.<0|1>.<layer> weights");
        if (widths.Count == 0)
            throw new InvalidModelFileException(file.Path, "not a hypernetwork: no <width>.<0|1>.linear.* tensors");

        var layers = new SortedDictionary<int, (HypernetworkModule, HypernetworkModule)>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (int width in widths)
            {
                var k = new HypernetworkModule(width, structure);
                var v = new HypernetworkModule(width, structure);
                layers[width] = (k, v);
                used.UnionWith(k.Load(file, $"{width}.0.", tensors));
                used.UnionWith(v.Load(file, $"{width}.1.", tensors));
            }
            var unexpected = tensors.Keys.Where(k => !used.Contains(k)).ToList();
            if (unexpected.Count > 0)
                throw new InvalidModelFileException(file.Path, $"hypernetwork has tensors its layer structure does not use: {string.Join(", ", unexpected.Take(6))}{(unexpected.Count > 6 ? ", ..." : "")}");
        }
        catch
        {
            foreach (var (k, v) in layers.Values)
            {
                k.Dispose();
                v.Dispose();
            }
            throw;
        }

        string? storedName = file.Metadata.TryGetValue("name", out var n) && n != "null" ? n : null;
        return new Hypernetwork(name ?? storedName ?? Path.GetFileNameWithoutExtension(file.Path), structure, layers)
        {
            Step = file.Metadata.TryGetValue("step", out var s) && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var step) ? step : null,
            FilePath = file.Path,
            Sha256 = FileSha256.TryCompute(file.Path),
        };
    }

    public void Dispose()
    {
        foreach (var (k, v) in _layers.Values)
        {
            k.Dispose();
            v.Dispose();
        }
        _layers.Clear();
    }
}
