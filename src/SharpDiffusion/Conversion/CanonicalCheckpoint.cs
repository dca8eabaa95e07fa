using SharpDiffusion.Architectures;
using System.Buffers;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Diffusers;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Conversion;

/// <summary>
/// A model seen in the one key space every consumer of checkpoints uses: the single-file LDM/sgm names
/// (<c>model.diffusion_model.*</c>, <c>first_stage_model.*</c>, <c>cond_stage_model.transformer.text_model.*</c> (SD1),
/// <c>cond_stage_model.model.*</c> (SD2), <c>conditioner.embedders.0.transformer.*</c> / <c>conditioner.embedders.1.model.*</c>
/// (SDXL)), whatever the source:
/// <list type="bullet">
/// <item>a diffusers folder (sharded, fp16 variants, .bin): renamed through <see cref="CheckpointKeyMap"/>; the VAE
/// attention's Linear weights are shown as the 1x1 convolutions they are in the single file (same bytes), OpenCLIP's
/// fused <c>in_proj</c> is the q, k and v tensors stacked, its <c>text_projection</c> the transpose of the Linear weight;</item>
/// <item>the old transformers text-encoder layout (<c>cond_stage_model.transformer.embeddings.*</c> without
/// <c>text_model.</c>), renamed as A1111 does on load;</item>
/// <item>a tree wrapped once more than the torch reader unwraps (<c>state_dict.model.diffusion_model.*</c>, <c>module.*</c>).</item>
/// </list>
/// Names are worked out once, when the view is made (headers only); tensor bytes are read from the underlying file on
/// demand, and only the stacked and transposed tensors cost more than the read. Anything else (LoRAs, embeddings, a
/// file already in the single-file layout) passes through unchanged, the same <see cref="TensorInfo"/> objects.
/// </summary>
public sealed class CanonicalCheckpoint : IModelFile
{
    /// <summary>How a canonical tensor's bytes come from the underlying file.</summary>
    private enum Layout
    {
        /// <summary>The same bytes (a rename, or a reshape such as Linear [o, i] to conv [o, i, 1, 1]).</summary>
        Same,

        /// <summary>A 2-D tensor stored transposed.</summary>
        Transposed,

        /// <summary>Several tensors stacked along dimension 0, in order.</summary>
        Stacked,
    }

    private sealed record Source(Layout Layout, TensorInfo[] Parts);

    /// <summary>Prefixes a tree can carry above the checkpoint's own roots (a second state_dict, DataParallel's module.).</summary>
    private static readonly string[] WrapperPrefixes = ["state_dict.", "module."];

    /// <summary>Roots of the single-file layout, used to tell a wrapper prefix from a model's own names.</summary>
    private static readonly string[] CheckpointRoots =
        [LdmPrefixes.Unet, LdmPrefixes.Vae, .. ModelArchitectures.TextEncoderPrefixes.Select(e => e.Prefix)];

    /// <summary>The CLIP text encoders (transformers names) that A1111 renames from the pre-4.x transformers layout.</summary>
    private static readonly string[] HfClipPrefixes = [.. ModelArchitectures.All.SelectMany(a => a.TextEncoders)
        .Where(e => e.Layout == TextEncoderLayout.HuggingFaceClip && e.Kind == TextEncoderKind.ClipL).Select(e => e.Prefix).Distinct()];

    private static readonly string[] LegacyClipRoots = ["embeddings.", "encoder.", "final_layer_norm."];

    /// <summary>Pipeline components that are not part of a single-file checkpoint (A1111 never loads them).</summary>
    private static readonly HashSet<string> ExtraComponents = new(StringComparer.Ordinal) { "safety_checker", "image_encoder" };

    private readonly IModelFile _inner;
    private readonly Dictionary<string, Source> _sources;

    private CanonicalCheckpoint(IModelFile inner, IReadOnlyList<TensorInfo> tensors, Dictionary<string, Source> sources,
        IReadOnlyList<string> unmapped, IReadOnlyList<string> dropped)
    {
        _inner = inner;
        Tensors = tensors;
        _sources = sources;
        Unmapped = unmapped;
        Dropped = dropped;
    }

    /// <summary>The file or folder as read, in its own names.</summary>
    public IModelFile Inner => _inner;

    public string Path => _inner.Path;

    /// <summary>The underlying format (a diffusers folder stays <see cref="ModelFormat.Diffusers"/>).</summary>
    public ModelFormat Format => _inner.Format;

    public IReadOnlyList<TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata => _inner.Metadata;
    public long SizeBytes => _inner.SizeBytes;

    /// <summary>Tensors of a diffusers folder that have no single-file name; they are kept under their folder names.</summary>
    public IReadOnlyList<string> Unmapped { get; }

    /// <summary>
    /// Tensors left out: a second copy of a weight under an old and a new name (the first is kept), OpenCLIP's
    /// non-persistent <c>position_ids</c>, components a single file does not hold (safety checker).
    /// </summary>
    public IReadOnlyList<string> Dropped { get; }

    /// <summary>True when some name differs from the underlying file's.</summary>
    public bool IsRenamed => _sources.Count > 0;

    /// <summary>Takes ownership of <paramref name="inner"/> (disposed with the view).</summary>
    public static CanonicalCheckpoint Wrap(IModelFile inner)
    {
        var builder = new Builder(inner);
        if (inner.Format == ModelFormat.Diffusers) builder.AddDiffusers();
        else builder.AddSingleFile();
        return builder.Build();
    }

    public void ReadTensorData(TensorInfo tensor, Span<byte> destination)
    {
        if (!_sources.TryGetValue(tensor.Name, out var source))
        {
            _inner.ReadTensorData(tensor, destination);
            return;
        }
        if (destination.Length < tensor.ByteLength)
            throw new ArgumentException($"{Path}: tensor '{tensor.Name}' needs {tensor.ByteLength} bytes, the buffer has {destination.Length}", nameof(destination));
        switch (source.Layout)
        {
            case Layout.Same:
                _inner.ReadTensorData(source.Parts[0], destination);
                return;
            case Layout.Stacked:
                long offset = 0;
                foreach (var part in source.Parts)
                {
                    _inner.ReadTensorData(part, destination.Slice(checked((int)offset), checked((int)part.ByteLength)));
                    offset += part.ByteLength;
                }
                return;
            case Layout.Transposed:
                ReadTransposed(source.Parts[0], destination);
                return;
        }
    }

    /// <summary>Reads a [rows, cols] tensor and writes it as [cols, rows].</summary>
    private void ReadTransposed(TensorInfo stored, Span<byte> destination)
    {
        int size = stored.DType.ElementSize();
        long rows = stored.Shape[0], cols = stored.Shape[1];
        byte[] rented = ArrayPool<byte>.Shared.Rent(checked((int)stored.ByteLength));
        try
        {
            var source = rented.AsSpan(0, (int)stored.ByteLength);
            _inner.ReadTensorData(stored, source);
            for (long r = 0; r < rows; r++)
                for (long c = 0; c < cols; c++)
                    source.Slice((int)((r * cols + c) * size), size).CopyTo(destination.Slice((int)((c * rows + r) * size), size));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public void Dispose() => _inner.Dispose();

    /// <summary>Works out the canonical names once; owns nothing (the caller disposes the inner file on failure).</summary>
    private sealed class Builder(IModelFile inner)
    {
        /// <summary>Canonical tensors in the underlying file's order; a stacked tensor sits where its first part was.</summary>
        private readonly List<TensorInfo> _tensors = new();
        private readonly Dictionary<string, Source> _sources = new(StringComparer.Ordinal);
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private readonly List<string> _unmapped = new();
        private readonly List<string> _dropped = new();

        public CanonicalCheckpoint Build() =>
            new(inner, _sources.Count == 0 && _dropped.Count == 0 ? inner.Tensors : _tensors, _sources, _unmapped, _dropped);

        /// <summary>A single file: wrapper prefixes removed, old CLIP names renamed; the first of two equal names wins.</summary>
        public void AddSingleFile()
        {
            var wrappers = WrapperPrefixesOf(inner.Tensors);
            foreach (var tensor in inner.Tensors)
            {
                string name = tensor.Name;
                foreach (var wrapper in wrappers)
                    if (name.StartsWith(wrapper, StringComparison.Ordinal)) name = name[wrapper.Length..];
                name = ModernClipName(name);
                if (name == tensor.Name) AddPassThrough(tensor);
                else AddRenamed(name, tensor, tensor.Shape, Layout.Same, [tensor]);
            }
        }

        /// <summary>A diffusers folder (<c>component/key</c> names) through the key map its own block structure gives.</summary>
        public void AddDiffusers()
        {
            var names = inner.Tensors.Select(t => t.Name).ToList();
            var map = CheckpointKeyMap.FromDiffusersKeys(names, ArchitectureOf(inner));
            var stacks = new Dictionary<string, (int Position, TensorInfo?[] Parts)>(StringComparer.Ordinal);
            foreach (var tensor in inner.Tensors)
            {
                int slash = tensor.Name.IndexOf('/');
                string component = slash > 0 ? tensor.Name[..slash] : "";
                string key = tensor.Name[(slash + 1)..];
                var c = slash > 0 ? map.ToLdm(component, key) : null;
                if (c == null)
                {
                    if (ExtraComponents.Contains(component) || key.EndsWith("embeddings.position_ids", StringComparison.Ordinal)) _dropped.Add(tensor.Name);
                    else
                    {
                        _unmapped.Add(tensor.Name);
                        AddPassThrough(tensor);
                    }
                    continue;
                }
                switch (c.Transform)
                {
                    case TensorTransform.RowSlice:
                    {
                        if (!stacks.TryGetValue(c.LdmKey, out var stack))
                        {
                            stack = (_tensors.Count, new TensorInfo?[c.SliceCount]);
                            stacks[c.LdmKey] = stack;
                            _tensors.Add(tensor); // placeholder, replaced when the stack is complete
                        }
                        stack.Parts[c.SliceIndex] = tensor;
                        break;
                    }
                    case TensorTransform.Transpose:
                        if (tensor.Rank != 2) throw Misfit(tensor, c.LdmKey);
                        AddRenamed(c.LdmKey, tensor, [tensor.Shape[1], tensor.Shape[0]], Layout.Transposed, [tensor]);
                        break;
                    default:
                        AddRenamed(c.LdmKey, tensor, c.LdmShapeFromDiffusers(tensor.Shape) ?? throw Misfit(tensor, c.LdmKey), Layout.Same, [tensor]);
                        break;
                }
            }
            foreach (var (ldmKey, (position, parts)) in stacks) _tensors[position] = Stack(ldmKey, parts);
        }

        private TensorInfo Stack(string ldmKey, TensorInfo?[] parts)
        {
            var present = parts.OfType<TensorInfo>().ToArray();
            if (present.Length != parts.Length)
                throw new InvalidModelFileException(inner.Path, $"'{ldmKey}' is q, k and v stacked, but only {string.Join(", ", present.Select(p => p.Name))} of them are in the folder");
            var first = present[0];
            if (present.Any(p => p.DType != first.DType || p.Rank != first.Rank || !p.Shape.AsSpan(1).SequenceEqual(first.Shape.AsSpan(1))))
                throw new InvalidModelFileException(inner.Path, $"q, k and v of '{ldmKey}' differ in type or shape ({string.Join(", ", present.Select(p => $"{p.Name} {p.DType} {p.ShapeText}"))})");
            long[] shape = [present.Sum(p => p.Shape[0]), .. first.Shape[1..]];
            var stacked = Canonical(ldmKey, first, shape);
            if (!_names.Add(ldmKey)) throw Duplicate(ldmKey);
            _sources[ldmKey] = new Source(Layout.Stacked, present);
            return stacked;
        }

        private void AddPassThrough(TensorInfo tensor)
        {
            if (!_names.Add(tensor.Name))
            {
                _dropped.Add(tensor.Name);
                return;
            }
            _tensors.Add(tensor);
        }

        private void AddRenamed(string name, TensorInfo stored, long[] shape, Layout layout, TensorInfo[] parts)
        {
            if (!_names.Add(name))
            {
                if (inner.Format == ModelFormat.Diffusers) throw Duplicate(name);
                _dropped.Add(stored.Name); // the same weight under an old and a new name: the first one is kept
                return;
            }
            _tensors.Add(Canonical(name, stored, shape));
            _sources[name] = new Source(layout, parts);
        }

        private static TensorInfo Canonical(string name, TensorInfo stored, long[] shape) =>
            new(name, stored.DType, shape) { StorageKey = stored.StorageKey, TypeName = stored.TypeName };

        private InvalidModelFileException Misfit(TensorInfo tensor, string ldmKey) =>
            new(inner.Path, $"'{tensor.Name}' {tensor.ShapeText} does not fit the single-file tensor '{ldmKey}'");

        private InvalidModelFileException Duplicate(string ldmKey) =>
            new(inner.Path, $"two tensors of the folder map to the single-file tensor '{ldmKey}'");
    }

    /// <summary>
    /// The diffusers layout names the SD 1.x and 2.x text encoders alike (only the tower differs): a second text encoder
    /// is SDXL; a GELU text encoder (OpenCLIP ViT-H; CLIP ViT-L uses quick_gelu) or the classifier's SD2 verdict (the
    /// one <c>inspect</c> shows, from the widths) is SD 2.x; anything else SD 1.x.
    /// </summary>
    private static ModelArchitecture ArchitectureOf(IModelFile folder)
    {
        bool Has(string component) => folder.Tensors.Any(t => t.Name.StartsWith(component + "/", StringComparison.Ordinal));
        // An SDXL refiner has only the OpenCLIP bigG encoder (text_encoder_2/), which its single file keeps as embedder 0.
        if (Has(DiffusersComponents.TextEncoder2)) return Has(DiffusersComponents.TextEncoder) ? ModelArchitectures.Sdxl : ModelArchitectures.SdxlRefiner;
        if (folder.Metadata.TryGetValue(DiffusersComponents.TextEncoder + ".config.hidden_act", out var act) && act == "gelu") return ModelArchitectures.Sd2;
        return ModelClassifier.Classify(folder).Base == BaseFamily.SD2 ? ModelArchitectures.Sd2 : ModelArchitectures.Sd1;
    }

    /// <summary>
    /// Wrapper prefixes to remove, outermost first: only when no tensor is at a checkpoint root already and some tensor
    /// is at one once the prefix is gone (so a LoRA or an embedding is never touched).
    /// </summary>
    private static List<string> WrapperPrefixesOf(IReadOnlyList<TensorInfo> tensors)
    {
        var found = new List<string>();
        var names = tensors.Select(t => t.Name).ToList();
        while (!names.Any(IsAtCheckpointRoot))
        {
            string? wrapper = WrapperPrefixes.FirstOrDefault(w => names.Any(n => n.StartsWith(w, StringComparison.Ordinal) && IsAtCheckpointRoot(n[w.Length..])));
            if (wrapper == null) return found;
            found.Add(wrapper);
            names = names.Select(n => n.StartsWith(wrapper, StringComparison.Ordinal) ? n[wrapper.Length..] : n).ToList();
        }
        return found;
    }

    private static bool IsAtCheckpointRoot(string name) => CheckpointRoots.Any(r => name.StartsWith(r, StringComparison.Ordinal));

    /// <summary>transformers 4.x moved CLIPTextModel's children under <c>text_model.</c>; A1111 renames the old names on load.</summary>
    private static string ModernClipName(string name)
    {
        foreach (var prefix in HfClipPrefixes)
        {
            if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var rest = name.AsSpan(prefix.Length);
            foreach (var root in LegacyClipRoots)
                if (rest.StartsWith(root, StringComparison.Ordinal)) return prefix + "text_model." + rest.ToString();
        }
        return name;
    }
}
