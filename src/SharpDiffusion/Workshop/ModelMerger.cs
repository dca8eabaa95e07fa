using SharpDiffusion.Architectures;
using SharpDiffusion.Conversion;
using SharpDiffusion.Inspection;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Workshop;

/// <summary>
/// A1111's Checkpoint Merger (modules/extras.py run_modelmerger), streamed, on inputs opened through
/// <see cref="CheckpointFiles"/> (any checkpoint file or diffusers folder, in the single-file names): the output has A's keys in A's order;
/// a key is merged when A1111 would merge it (name contains "model", not the CLIP position ids, present in B, and
/// for add difference present in C — a key C lacks stays A's, as A1111's zero difference gives) and both tensors
/// are floating point; everything else is copied from A. Arithmetic is float32, the result is stored at the chosen
/// precision (default: A's type for that tensor). Every check (families, shapes, dtypes, VAE keys) runs before the
/// output is opened; the output is written to a temporary file and renamed when complete, and holds one tensor
/// from each input and a few output tensors in memory at a time (the next tensors are read and merged while the
/// previous one is written: <see cref="TensorPipeline"/>).
/// </summary>
public static class ModelMerger
{
    private enum Source { A, Merge, LeadingChannels, Vae }

    private sealed record Entry(string Name, TensorInfo A, TensorDType OutType, Source Source,
        TensorInfo? B = null, TensorInfo? C = null, TensorInfo? Vae = null, double Multiplier = 0);

    public static MergeResult Merge(MergeOptions options, IProgress<WorkshopProgress>? progress = null)
    {
        if (options.Mode == MergeMode.AddDifference && options.ModelC == null)
            throw new WorkshopException("add difference needs a third model (C): A + M (B - C)");
        if (!double.IsFinite(options.Multiplier)) throw new WorkshopException($"multiplier {options.Multiplier} is not a finite number");
        if (options.Precision is { } p && !Precision.CanEncode(p))
            throw new WorkshopException($"precision {p} cannot be written; use fp32, fp16 or bf16");
        string? modelC = options.Mode == MergeMode.AddDifference ? options.ModelC : null;
        OutputGuard.Check(options.Output, [options.ModelA, options.ModelB, modelC, options.Vae]);

        var opened = new List<IModelFile>();
        try
        {
            var a = Open(options.ModelA, "A", opened);
            var b = Open(options.ModelB, "B", opened);
            var c = modelC == null ? null : Open(modelC, "C", opened);
            var vae = options.Vae == null ? null : Open(options.Vae, "VAE", opened);
            CheckFamilies(a, b, c);

            var plan = Plan(options, a, b, c, vae, out bool inpainting, out bool pix2pix);

            var hasher = options.Hasher ?? (path => CheckpointFiles.Hash(path));
            var metadata = MergeMetadata.Build(options,
                new MergeMetadata.Input(a.Path, a, hasher(a.Path)),
                new MergeMetadata.Input(b.Path, b, hasher(b.Path)),
                c == null ? null : new MergeMetadata.Input(c.Path, c, hasher(c.Path)),
                inpainting, pix2pix);

            long total = plan.Sum(e => SafetensorsWriter.ComputeByteLength(e.OutType, e.A.Shape));
            var buffers = new Buffers();
            buffers.Reserve(plan);
            long largestOutput = plan.Select(e => SafetensorsWriter.ComputeByteLength(e.OutType, e.A.Shape)).DefaultIfEmpty(0).Max();
            using var pipeline = new TensorPipeline(plan.Count, PipelineBuffers, largestOutput,
                (i, output) => Produce(plan[i], a, b, c, vae, buffers, output));
            var tensors = plan.Select(e => new TensorToWrite(e.Name, e.OutType, e.A.Shape, stream => stream.Write(pipeline.Next().Span)));
            progress?.Report(new WorkshopProgress(0, total));
            SafetensorsWriter.Write(options.Output, tensors, metadata,
                progress == null ? null : new SyncProgress(written => progress.Report(new WorkshopProgress(written, total))));

            return new MergeResult
            {
                Output = options.Output,
                Tensors = plan.Count,
                Merged = plan.Count(e => e.Source is Source.Merge or Source.LeadingChannels),
                KeptFromA = plan.Count(e => e.Source == Source.A),
                VaeReplaced = plan.Count(e => e.Source == Source.Vae),
                IsInpainting = inpainting,
                IsInstructPix2Pix = pix2pix,
                OutputBytes = total,
                Metadata = metadata,
            };
        }
        finally
        {
            foreach (var source in opened) source.Dispose();
        }
    }

    private static IModelFile Open(string path, string role, List<IModelFile> opened)
    {
        var file = CheckpointFiles.Open(path);
        opened.Add(file);
        var quantized = file.Tensors.FirstOrDefault(t => t.DType == TensorDType.Quantized);
        if (quantized != null)
            throw new WorkshopException($"{path}: model {role}'s tensor '{quantized.Name}' is block-quantized ({quantized.TypeName}); merging needs plain float tensors");
        return file;
    }

    private static void CheckFamilies(IModelFile a, IModelFile b, IModelFile? c)
    {
        // The classifier's verdict, named by the registry: a merge across families is refused by the rules `inspect` reports.
        string? fa = ModelClassifier.Classify(a).Base?.DisplayName();
        foreach (var (other, role) in new[] { (b, "B"), (c, "C") })
        {
            if (other == null) continue;
            string? fo = ModelClassifier.Classify(other).Base?.DisplayName();
            if (fa != null && fo != null && fa != fo)
                throw new WorkshopException($"A ({a.Path}) is {fa} and {role} ({other.Path}) is {fo}: models of different families cannot be merged");
        }
    }

    private static Dictionary<string, TensorInfo> ByName(IModelFile file)
    {
        var map = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var t in file.Tensors) map.TryAdd(t.Name, t);
        return map;
    }

    private static List<Entry> Plan(MergeOptions options, IModelFile a, IModelFile b, IModelFile? c, IModelFile? vae,
        out bool inpainting, out bool pix2pix)
    {
        inpainting = pix2pix = false;
        var bNames = ByName(b);
        var cNames = c == null ? null : ByName(c);
        var vaeNames = vae == null ? null : VaeKeys.Map(vae);
        var plan = new List<Entry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int vaeMatched = 0;

        foreach (var ta in a.Tensors)
        {
            string name = ta.Name;
            if (!seen.Add(name)) continue;
            var outType = Precision.Apply(ta.DType, options.Precision);

            if (vaeNames != null && vaeNames.TryGetValue(name, out var tv))
            {
                if (!tv.Shape.SequenceEqual(ta.Shape))
                    throw new WorkshopException($"VAE {vae!.Path}: tensor '{tv.Name}' has shape {tv.ShapeText}, A's '{name}' is {ta.ShapeText}: not a VAE for this model");
                if (!tv.DType.IsFloatingPoint() || !ta.DType.IsFloatingPoint())
                    throw new WorkshopException($"VAE {vae!.Path}: tensor '{tv.Name}' is {tv.DType}, not a float tensor");
                RequireEncodable(outType, name);
                plan.Add(new Entry(name, ta, outType, Source.Vae, Vae: tv));
                vaeMatched++;
                continue;
            }

            if (!CheckpointKeys.IsMergeable(name) || !bNames.TryGetValue(name, out var tb)
                || !ta.DType.IsFloatingPoint() || !tb.DType.IsFloatingPoint())
            {
                plan.Add(new Entry(name, ta, outType, Source.A));
                continue;
            }
            TensorInfo? tc = null;
            if (cNames != null)
            {
                if (!cNames.TryGetValue(name, out tc) || !tc.DType.IsFloatingPoint())
                {
                    plan.Add(new Entry(name, ta, outType, Source.A));
                    continue;
                }
                if (!tc.Shape.SequenceEqual(tb.Shape))
                    throw new WorkshopException($"tensor '{name}': B has shape {tb.ShapeText}, C has {tc.ShapeText}: B and C are different model types");
            }
            RequireEncodable(outType, name);
            double multiplier = options.BlockWeights?.WeightFor(name) ?? options.Multiplier;

            if (ta.Shape.SequenceEqual(tb.Shape))
            {
                plan.Add(new Entry(name, ta, outType, Source.Merge, tb, tc, Multiplier: multiplier));
                continue;
            }
            switch (ChannelCase(name, ta.Shape, tb.Shape))
            {
                case 9: inpainting = true; break;
                case 8: pix2pix = true; break;
            }
            plan.Add(new Entry(name, ta, outType, Source.LeadingChannels, tb, tc, Multiplier: multiplier));
        }

        if (vae != null && vaeMatched == 0)
            throw new WorkshopException($"VAE {vae.Path}: none of its tensors match A's first_stage_model.* keys (is it a diffusers-layout VAE, or is A without a VAE?)");
        if (!plan.Any(e => e.Source is Source.Merge or Source.LeadingChannels) && bNames.Count > 0)
            throw new WorkshopException($"B ({b.Path}) shares no mergeable tensor with A ({a.Path}): is it a checkpoint of the same kind?");
        return plan;
    }

    /// <summary>
    /// A1111's rule for differently shaped tensors: only when the shapes differ in dimension 1 alone, A has 9
    /// (inpainting) or 8 (instruct-pix2pix) channels and B has 4. Returns A's channel count; throws otherwise.
    /// </summary>
    private static long ChannelCase(string name, long[] a, long[] b)
    {
        string shapes = $"A has shape [{string.Join(", ", a)}], B has [{string.Join(", ", b)}]";
        bool onlyChannels = a.Length == b.Length && a.Length >= 2 && a[0] == b[0] && a.Skip(2).SequenceEqual(b.Skip(2));
        if (!onlyChannels) throw new WorkshopException($"tensor '{name}': {shapes}: the models have different architectures (families) and cannot be merged");
        if (a[1] == 4 && b[1] == 9) throw new WorkshopException($"tensor '{name}': {shapes}: when merging an inpainting model with a normal one, A must be the inpainting model");
        if (a[1] == 4 && b[1] == 8) throw new WorkshopException($"tensor '{name}': {shapes}: when merging an instruct-pix2pix model with a normal one, A must be the instruct-pix2pix model");
        if (b[1] == 4 && a[1] is 9 or 8) return a[1];
        throw new WorkshopException($"tensor '{name}': {shapes}: the models have different architectures (families) and cannot be merged (only a 9-channel inpainting or 8-channel instruct-pix2pix A merges with a 4-channel B)");
    }

    private static void RequireEncodable(TensorDType outType, string name)
    {
        if (!Precision.CanEncode(outType))
            throw new WorkshopException($"tensor '{name}' is stored as {outType}, which merged values cannot be written back to: choose fp16, bf16 or fp32");
    }

    /// <summary>
    /// Output tensors in flight: one being computed, one waiting, one being written. Reading and merging the next
    /// tensor overlap writing the previous one; the working memory stays a few of the largest tensor.
    /// </summary>
    private const int PipelineBuffers = 3;

    /// <summary>One output tensor's bytes (on the pipeline's thread): a copy of A's (or the VAE's) tensor, converted if needed, or the merge.</summary>
    private static ReadOnlyMemory<byte> Produce(Entry e, IModelFile a, IModelFile b, IModelFile? c, IModelFile? vae,
        Buffers buffers, ByteBuffer output)
    {
        switch (e.Source)
        {
            case Source.A:
                return ReadConverted(a, e.A, e.OutType, buffers, output);
            case Source.Vae:
                return ReadConverted(vae!, e.Vae!, e.OutType, buffers, output);
            default:
            {
                var da = buffers.A.Get(e.A.ByteLength);
                a.ReadTensorData(e.A, da.Span);
                var db = buffers.B.Get(e.B!.ByteLength);
                b.ReadTensorData(e.B, db.Span);
                Memory<byte> dc = default;
                if (e.C != null)
                {
                    dc = buffers.C.Get(e.C.ByteLength);
                    c!.ReadTensorData(e.C, dc.Span);
                }
                var cType = e.C?.DType ?? TensorDType.F32;
                var mode = e.C != null ? MergeMode.AddDifference : MergeMode.WeightedSum;
                if (e.Source == Source.Merge)
                {
                    var result = output.Get(SafetensorsWriter.ComputeByteLength(e.OutType, e.A.Shape));
                    TensorMath.Merge(mode, e.Multiplier, da, e.A.DType, db, e.B.DType, dc, cType, e.OutType, result);
                    return result;
                }
                return TensorMath.MergeLeadingChannels(mode, e.Multiplier, da.Span, e.A.DType, e.A.Shape, db.Span, e.B.DType, e.B.Shape,
                    dc.Span, cType, e.OutType);
            }
        }
    }

    private static ReadOnlyMemory<byte> ReadConverted(IModelFile source, TensorInfo tensor, TensorDType outType, Buffers buffers, ByteBuffer output)
    {
        if (tensor.DType == outType)
        {
            var same = output.Get(tensor.ByteLength);
            source.ReadTensorData(tensor, same.Span);
            return same;
        }
        var data = buffers.A.Get(tensor.ByteLength);
        source.ReadTensorData(tensor, data.Span);
        var result = output.Get(SafetensorsWriter.ComputeByteLength(outType, tensor.Shape));
        TensorMath.Convert(data, tensor.DType, outType, result);
        return result;
    }

    /// <summary>One reusable buffer per input, used on the pipeline's thread; outputs live in the pipeline's own buffers.</summary>
    private sealed class Buffers
    {
        public ByteBuffer A { get; } = new();
        public ByteBuffer B { get; } = new();
        public ByteBuffer C { get; } = new();

        public void Reserve(List<Entry> plan)
        {
            A.Reserve(plan.Where(e => e.Source is Source.Merge or Source.LeadingChannels || e.OutType != (e.Vae ?? e.A).DType)
                .Select(e => Math.Max(e.A.ByteLength, e.Vae?.ByteLength ?? 0)).DefaultIfEmpty(0).Max());
            B.Reserve(plan.Select(e => e.B?.ByteLength ?? 0).DefaultIfEmpty(0).Max());
            C.Reserve(plan.Select(e => e.C?.ByteLength ?? 0).DefaultIfEmpty(0).Max());
        }
    }
}
