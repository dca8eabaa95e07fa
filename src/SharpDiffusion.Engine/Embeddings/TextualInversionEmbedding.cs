using System.Globalization;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Embeddings;

/// <summary>
/// A textual-inversion embedding read from a model file (A1111's <c>EmbeddingDatabase.load_from_file</c>): float32 CPU
/// vectors [n, C] — one set, or for SDXL one set per text encoder (<c>clip_l</c>, <c>clip_g</c>) — plus what the file
/// says about itself. The prompt word is <see cref="Name"/>, the file name without extension, as in A1111.
/// </summary>
public sealed class TextualInversionEmbedding : IDisposable
{
    public const string StringToParamPrefix = "string_to_param.";
    public const string ClipLKey = "clip_l";
    public const string ClipGKey = "clip_g";

    /// <summary>A1111's <c>TI hashes:</c> infotext uses the first 12 hex digits of the file's SHA-256 (<c>Embedding.set_hash</c>).</summary>
    public const int ShortHashLength = 12;

    private TextualInversionEmbedding(string name, EmbeddingLayout layout, Tensor? vectors, Tensor? clipL, Tensor? clipG)
    {
        Name = name;
        Layout = layout;
        Vectors = vectors;
        ClipL = clipL;
        ClipG = clipG;
    }

    /// <summary>The word that triggers it in a prompt: the file name without extension.</summary>
    public string Name { get; }

    public EmbeddingLayout Layout { get; }

    /// <summary>The one set of vectors [n, C] (null for <see cref="EmbeddingLayout.Sdxl"/>).</summary>
    public Tensor? Vectors { get; }

    /// <summary>SDXL: vectors for the CLIP-L encoder [n, 768].</summary>
    public Tensor? ClipL { get; }

    /// <summary>SDXL: vectors for the OpenCLIP bigG encoder [n, 1280].</summary>
    public Tensor? ClipG { get; }

    /// <summary>Vectors per use (A1111: rows of the single tensor, or of <c>clip_g</c>).</summary>
    public int VectorCount => (int)(Vectors ?? ClipG!).shape[0];

    /// <summary>The file it was read from.</summary>
    public string? FilePath { get; private init; }

    /// <summary>The <c>name</c> stored inside an A1111 file (informational; A1111 uses the file name).</summary>
    public string? StoredName { get; private init; }

    /// <summary>Training steps (<c>step</c>), when the file records them.</summary>
    public long? Step { get; private init; }

    /// <summary><c>sd_checkpoint</c> (hash of the checkpoint it was trained on), when recorded.</summary>
    public string? SdCheckpoint { get; private init; }

    /// <summary><c>sd_checkpoint_name</c>, when recorded.</summary>
    public string? SdCheckpointName { get; private init; }

    /// <summary>SHA-256 of the file (lower-case hex); null when the source is not a plain file.</summary>
    public string? Sha256 { get; private init; }

    /// <summary>The hash A1111 writes in <c>TI hashes:</c> (first 12 hex digits of <see cref="Sha256"/>).</summary>
    public string? ShortHash => Sha256?[..ShortHashLength];

    /// <summary>The vector widths, in encoder order: [C] or [clip_l C, clip_g C].</summary>
    public IReadOnlyList<int> Widths => Vectors is not null
        ? new[] { (int)Vectors.shape[1] }
        : new[] { (int)ClipL!.shape[1], (int)ClipG!.shape[1] };

    /// <summary>
    /// Reads an embedding in any of the layouts of <see cref="EmbeddingLayout"/>. Pickle files are expected flattened
    /// as the torch reader does (tensors <c>string_to_param.*</c>, metadata <c>name</c>, <c>step</c>, ...).
    /// </summary>
    /// <param name="file">The opened file.</param>
    /// <param name="name">The prompt word; default: the file name without extension.</param>
    /// <exception cref="InvalidModelFileException">Not an embedding, or more than one term in it.</exception>
    public static TextualInversionEmbedding Load(IModelFile file, string? name = null)
    {
        name ??= Path.GetFileNameWithoutExtension(file.Path);
        var tensors = file.Tensors;
        var stringToParam = tensors.Where(t => t.Name.StartsWith(StringToParamPrefix, StringComparison.Ordinal)).ToList();
        var clipL = tensors.FirstOrDefault(t => t.Name == ClipLKey);
        var clipG = tensors.FirstOrDefault(t => t.Name == ClipGKey);

        EmbeddingLayout layout;
        Tensor? single = null, l = null, g = null;
        if (stringToParam.Count > 0)
        {
            if (stringToParam.Count > 1)
                throw new InvalidModelFileException(file.Path, $"embedding file has {stringToParam.Count} terms in it ({string.Join(", ", stringToParam.Select(t => t.Name))}); one is supported");
            layout = EmbeddingLayout.StringToParam;
            single = ReadVectors(file, stringToParam[0]);
        }
        else if (clipL is not null && clipG is not null)
        {
            if (clipL.Rank != 2 || clipG.Rank != 2 || clipL.Shape[0] != clipG.Shape[0])
                throw new InvalidModelFileException(file.Path, $"SDXL embedding needs clip_l and clip_g as [vectors, C] with the same vector count; found clip_l {clipL.ShapeText}, clip_g {clipG.ShapeText}");
            layout = EmbeddingLayout.Sdxl;
            l = ReadVectors(file, clipL);
            g = ReadVectors(file, clipG);
        }
        else if (tensors.Count == 1)
        {
            layout = EmbeddingLayout.SingleTensor;
            single = ReadVectors(file, tensors[0]);
        }
        else
        {
            var found = tensors.Count == 0 ? "no tensors" : $"{tensors.Count} tensors ({string.Join(", ", tensors.Take(4).Select(t => t.Name))}{(tensors.Count > 4 ? ", ..." : "")})";
            throw new InvalidModelFileException(file.Path,
                $"not a textual-inversion embedding: expected string_to_param.*, clip_l + clip_g, or a single tensor; found {found}");
        }

        return new TextualInversionEmbedding(name, layout, single, l, g)
        {
            FilePath = file.Path,
            StoredName = Text(file, "name"),
            Step = long.TryParse(Text(file, "step"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var step) ? step : null,
            SdCheckpoint = Text(file, "sd_checkpoint"),
            SdCheckpointName = Text(file, "sd_checkpoint_name"),
            Sha256 = FileSha256.TryCompute(file.Path),
        };
    }

    /// <summary>Builds an embedding from vectors in memory (tests, bundled embeddings); the vectors are copied.</summary>
    public static TextualInversionEmbedding FromVectors(string name, Tensor vectors) =>
        new(name, EmbeddingLayout.SingleTensor, CheckedVectors(vectors, name), null, null);

    /// <summary>An SDXL embedding from vectors in memory; the vectors are copied.</summary>
    public static TextualInversionEmbedding FromSdxlVectors(string name, Tensor clipL, Tensor clipG)
    {
        if (clipL.shape[0] != clipG.shape[0]) throw new ArgumentException("clip_l and clip_g need the same number of vectors");
        return new(name, EmbeddingLayout.Sdxl, null, CheckedVectors(clipL, name), CheckedVectors(clipG, name));
    }

    /// <summary>
    /// The vectors for a text encoder of width <paramref name="encoderWidth"/> in a model whose encoders have
    /// <paramref name="modelWidths"/> (SD1 [768], SD2 [1024], SDXL [768, 1280]), or null with the reason in
    /// <paramref name="problem"/> when this embedding is not for that model.
    /// </summary>
    public Tensor? VectorsFor(IReadOnlyList<int> modelWidths, int encoderWidth, out string? problem)
    {
        problem = CompatibilityProblem(modelWidths);
        if (problem is not null) return null;
        if (Vectors is not null) return Vectors;
        int index = IndexOf(modelWidths, encoderWidth);
        return index switch
        {
            0 => ClipL,
            1 => ClipG,
            _ => throw new ArgumentException($"the model has no text encoder of width {encoderWidth} (widths: {string.Join(", ", modelWidths)})", nameof(encoderWidth)),
        };
    }

    /// <summary>Why this embedding cannot be used with a model whose text encoders have <paramref name="modelWidths"/>; null if it can.</summary>
    public string? CompatibilityProblem(IReadOnlyList<int> modelWidths)
    {
        string model = modelWidths.Count == 1
            ? $"this model's text encoder takes {modelWidths[0]}"
            : $"this model's text encoders take {string.Join(" + ", modelWidths)}";
        if (Vectors is not null)
        {
            int width = (int)Vectors.shape[1];
            if (modelWidths.Count == 1 && modelWidths[0] == width) return null;
            var family = width switch { 768 => " (an SD1 embedding?)", 1024 => " (an SD2 embedding?)", _ => "" };
            return $"{Name}: vectors are {width} wide, {model}{family}";
        }
        int l = (int)ClipL!.shape[1], g = (int)ClipG!.shape[1];
        if (modelWidths.Count == 2 && modelWidths[0] == l && modelWidths[1] == g) return null;
        return $"{Name}: an SDXL embedding (clip_l {l} + clip_g {g} wide), {model}";
    }

    public void Dispose()
    {
        Vectors?.Dispose();
        ClipL?.Dispose();
        ClipG?.Dispose();
    }

    private static int IndexOf(IReadOnlyList<int> widths, int width)
    {
        for (int i = 0; i < widths.Count; i++) if (widths[i] == width) return i;
        return -1;
    }

    private static string? Text(IModelFile file, string key) =>
        file.Metadata.TryGetValue(key, out var value) && value != "null" ? value : null;

    /// <summary>Reads [C] or [n, C] as float32 [n, C] (A1111 unsqueezes a single vector).</summary>
    private static Tensor ReadVectors(IModelFile file, TensorInfo info)
    {
        if (!info.DType.IsFloatingPoint())
            throw new InvalidModelFileException(file.Path, $"embedding tensor {info.Name} is {info.DType}, not floating point");
        if (info.Rank is not (1 or 2) || info.Shape[^1] == 0 || info.Shape[0] == 0)
            throw new InvalidModelFileException(file.Path, $"embedding tensor {info.Name} has shape {info.ShapeText}; expected [C] or [vectors, C]");
        var t = TensorReading.Read(file, info, ScalarType.Float32);
        if (info.Rank == 2) return t;
        using (t) return t.unsqueeze(0);
    }

    private static Tensor CheckedVectors(Tensor vectors, string name)
    {
        if (vectors.dim() != 2 || vectors.shape[0] == 0) throw new ArgumentException($"{name}: vectors must be [n, C] with n ≥ 1");
        using var detached = vectors.detach();
        return detached.to(ScalarType.Float32, CPU, copy: true);
    }
}
