namespace SharpDiffusion.Engine.ControlNet;

/// <summary>The <c>cv2.resize</c> interpolations sd-webui-controlnet uses for control maps.</summary>
public enum OpenCvInterpolation
{
    /// <summary><c>INTER_NEAREST</c>: <c>floor(x · src/dst)</c>.</summary>
    Nearest,

    /// <summary><c>INTER_AREA</c>: pixel-area averaging when both axes shrink, else bilinear with area weights.</summary>
    Area,

    /// <summary><c>INTER_CUBIC</c>: Keys' cubic (A = −0.75), 11-bit fixed-point weights.</summary>
    Cubic,
}

/// <summary>
/// OpenCV's <c>cv::resize</c> for 8-bit images of 1 to 4 interleaved channels, bit for bit as OpenCV 4.x computes it
/// with its own code (modules/imgproc/src/resize.cpp; no IPP, SSE2 universal intrinsics as in an x86-64 baseline
/// build): the same tables, fixed-point weights, float accumulations and rounding. The sizes are OpenCV's
/// <c>dsize</c>: <c>inv_scale = dst / src</c>, <c>scale = 1 / inv_scale</c>.
/// </summary>
public static class OpenCvResize
{
    private const int CoefBits = 11; // INTER_RESIZE_COEF_BITS
    private const int CoefScale = 1 << CoefBits;
    private const double DblEpsilon = 2.220446049250313e-16; // C's DBL_EPSILON (not .NET's double.Epsilon)

    /// <param name="src">Row-major pixels, <paramref name="channels"/> bytes each.</param>
    public static byte[] Resize(byte[] src, int width, int height, int channels, int dstWidth, int dstHeight, OpenCvInterpolation interpolation)
    {
        if (width <= 0 || height <= 0 || dstWidth <= 0 || dstHeight <= 0)
            throw new ArgumentException($"cannot resize {width}x{height} to {dstWidth}x{dstHeight}: sizes must be positive");
        if (channels is < 1 or > 4) throw new ArgumentException($"{channels} channels: 1 to 4 are supported");
        if (src.Length != (long)width * height * channels)
            throw new ArgumentException($"{src.Length} bytes do not make a {width}x{height} image of {channels} channels");
        // cv::resize copies when the size does not change.
        if (dstWidth == width && dstHeight == height) return (byte[])src.Clone();

        double invScaleX = (double)dstWidth / width, invScaleY = (double)dstHeight / height;
        double scaleX = 1.0 / invScaleX, scaleY = 1.0 / invScaleY;
        switch (interpolation)
        {
            case OpenCvInterpolation.Nearest:
                return Nearest(src, width, height, channels, dstWidth, dstHeight, invScaleX, invScaleY);
            case OpenCvInterpolation.Area when scaleX >= 1 && scaleY >= 1:
            {
                int iscaleX = SaturateInt(scaleX), iscaleY = SaturateInt(scaleY);
                bool areaFast = Math.Abs(scaleX - iscaleX) < DblEpsilon && Math.Abs(scaleY - iscaleY) < DblEpsilon;
                return areaFast
                    ? AreaFast(src, width, height, channels, dstWidth, dstHeight, iscaleX, iscaleY)
                    : Area(src, width, height, channels, dstWidth, dstHeight, scaleX, scaleY);
            }
            case OpenCvInterpolation.Area:
                // "true area interpolation is only implemented for scale_x >= 1 && scale_y >= 1; in other cases it is
                // emulated using some variant of bilinear interpolation" (resize.cpp).
                return Linear(src, width, height, channels, dstWidth, dstHeight, scaleX, scaleY, invScaleX, invScaleY);
            case OpenCvInterpolation.Cubic:
                return Cubic(src, width, height, channels, dstWidth, dstHeight, scaleX, scaleY);
            default:
                throw new ArgumentOutOfRangeException(nameof(interpolation), interpolation, "unknown interpolation");
        }
    }

    /// <summary>resizeNN: <c>sx = min(cvFloor(x · (1 / inv_scale_x)), w − 1)</c>, the same for rows.</summary>
    private static byte[] Nearest(byte[] src, int width, int height, int cn, int dstWidth, int dstHeight, double invScaleX, double invScaleY)
    {
        double ifx = 1.0 / invScaleX, ify = 1.0 / invScaleY;
        var xOffsets = new int[dstWidth];
        for (int x = 0; x < dstWidth; x++) xOffsets[x] = Math.Min((int)Math.Floor(x * ifx), width - 1) * cn;
        var dst = new byte[dstWidth * dstHeight * cn];
        for (int y = 0; y < dstHeight; y++)
        {
            int sy = Math.Min((int)Math.Floor(y * ify), height - 1);
            int srcRow = sy * width * cn, dstRow = y * dstWidth * cn;
            for (int x = 0; x < dstWidth; x++)
                for (int c = 0; c < cn; c++) dst[dstRow + x * cn + c] = src[srcRow + xOffsets[x] + c];
        }
        return dst;
    }

    /// <summary>
    /// resizeAreaFast_ (integer factors on both axes): the mean of each factor_x × factor_y cell, as
    /// <c>saturate_cast&lt;uchar&gt;(sum · (1.f / area))</c>, except the 2×2 case of 1, 3 or 4 channels, which OpenCV
    /// computes as <c>(a + b + c + d + 2) &gt;&gt; 2</c>.
    /// </summary>
    private static byte[] AreaFast(byte[] src, int width, int height, int cn, int dstWidth, int dstHeight, int scaleX, int scaleY)
    {
        var dst = new byte[dstWidth * dstHeight * cn];
        int srcStep = width * cn;
        bool twoByTwo = scaleX == 2 && scaleY == 2 && cn is 1 or 3 or 4;
        float scale = 1f / (scaleX * scaleY);
        int dwidth1 = width / scaleX * cn;
        for (int dy = 0; dy < dstHeight; dy++)
        {
            int sy0 = dy * scaleY, dstRow = dy * dstWidth * cn;
            if (sy0 >= height) continue; // OpenCV writes 0 (cannot happen for an exact factor)
            int w = sy0 + scaleY <= height ? dwidth1 : 0;
            int dx = 0;
            for (; dx < w; dx++)
            {
                int pixel = dx / cn, c = dx % cn, sx = pixel * scaleX * cn + c;
                if (twoByTwo)
                {
                    int at = sy0 * srcStep + sx;
                    dst[dstRow + dx] = (byte)((src[at] + src[at + cn] + src[at + srcStep] + src[at + srcStep + cn] + 2) >> 2);
                    continue;
                }
                int sum = 0;
                for (int ky = 0; ky < scaleY; ky++)
                    for (int kx = 0; kx < scaleX; kx++) sum += src[(sy0 + ky) * srcStep + sx + kx * cn];
                dst[dstRow + dx] = SaturateByte(sum * scale);
            }
            // The partial cells at the right and bottom edges (none for an exact factor): the mean of what exists.
            for (; dx < dstWidth * cn; dx++)
            {
                int pixel = dx / cn, c = dx % cn, sx0 = pixel * scaleX * cn + c;
                int sum = 0, count = 0;
                for (int ky = 0; ky < scaleY && sy0 + ky < height; ky++)
                    for (int kx = 0; kx < scaleX * cn && sx0 + kx < srcStep; kx += cn)
                    {
                        sum += src[(sy0 + ky) * srcStep + sx0 + kx];
                        count++;
                    }
                dst[dstRow + dx] = count == 0 ? (byte)0 : SaturateByte((float)sum / count);
            }
        }
        return dst;
    }

    private readonly record struct DecimateAlpha(int Di, int Si, float Alpha);

    /// <summary>computeResizeAreaTab: for every destination cell, the source pixels it covers and their shares.</summary>
    private static List<DecimateAlpha> AreaTable(int ssize, int dsize, int cn, double scale)
    {
        var table = new List<DecimateAlpha>();
        for (int dx = 0; dx < dsize; dx++)
        {
            double fsx1 = dx * scale;
            double fsx2 = fsx1 + scale;
            double cellWidth = Math.Min(scale, ssize - fsx1);
            int sx1 = (int)Math.Ceiling(fsx1), sx2 = (int)Math.Floor(fsx2);
            sx2 = Math.Min(sx2, ssize - 1);
            sx1 = Math.Min(sx1, sx2);
            if (sx1 - fsx1 > 1e-3) table.Add(new(dx * cn, (sx1 - 1) * cn, (float)((sx1 - fsx1) / cellWidth)));
            for (int sx = sx1; sx < sx2; sx++) table.Add(new(dx * cn, sx * cn, (float)(1.0 / cellWidth)));
            if (fsx2 - sx2 > 1e-3) table.Add(new(dx * cn, sx2 * cn, (float)(Math.Min(Math.Min(fsx2 - sx2, 1.0), cellWidth) / cellWidth)));
        }
        return table;
    }

    /// <summary>
    /// ResizeArea_Invoker (non-integer shrink on both axes): each source row's pixels weighted into a float row buffer
    /// (in table order), rows accumulated with their weights (<c>sum = β·buf</c> for a new destination row, else
    /// <c>sum += β·buf</c>), stored with round-half-even.
    /// </summary>
    private static byte[] Area(byte[] src, int width, int height, int cn, int dstWidth, int dstHeight, double scaleX, double scaleY)
    {
        var xtab = AreaTable(width, dstWidth, cn, scaleX);
        var ytab = AreaTable(height, dstHeight, 1, scaleY);
        int rowWidth = dstWidth * cn;
        var dst = new byte[rowWidth * dstHeight];
        var buf = new float[rowWidth];
        var sum = new float[rowWidth];
        int prevDy = ytab[0].Di;
        foreach (var (dy, sy, beta) in ytab)
        {
            Array.Clear(buf);
            int srcRow = sy * width * cn;
            foreach (var (di, si, alpha) in xtab)
                for (int c = 0; c < cn; c++) buf[di + c] = buf[di + c] + src[srcRow + si + c] * alpha;
            if (dy != prevDy)
            {
                int dstRow = prevDy * rowWidth;
                for (int dx = 0; dx < rowWidth; dx++)
                {
                    dst[dstRow + dx] = SaturateByte(sum[dx]);
                    sum[dx] = beta * buf[dx];
                }
                prevDy = dy;
            }
            else
            {
                for (int dx = 0; dx < rowWidth; dx++) sum[dx] += beta * buf[dx];
            }
        }
        int lastRow = prevDy * rowWidth;
        for (int dx = 0; dx < rowWidth; dx++) dst[lastRow + dx] = SaturateByte(sum[dx]);
        return dst;
    }

    /// <summary>
    /// The generic separable path with INTER_AREA's bilinear weights (used when an axis grows):
    /// <c>sx = floor(dx·scale)</c>, <c>fx = (dx + 1) − (sx + 1)·inv_scale</c> (0 when ≤ 0, else its fraction), 11-bit
    /// weights; horizontal integer sums, vertically OpenCV's 8-bit formula
    /// <c>((b0·(S0 &gt;&gt; 4)) &gt;&gt; 16) + ((b1·(S1 &gt;&gt; 4)) &gt;&gt; 16) + 2) &gt;&gt; 2</c>.
    /// </summary>
    private static byte[] Linear(byte[] src, int width, int height, int cn, int dstWidth, int dstHeight,
        double scaleX, double scaleY, double invScaleX, double invScaleY)
    {
        var xofs = new int[dstWidth];
        var alpha = new short[dstWidth * 2];
        int xmax = dstWidth;
        for (int dx = 0; dx < dstWidth; dx++)
        {
            int sx = (int)Math.Floor(dx * scaleX);
            float fx = (float)((dx + 1) - (sx + 1) * invScaleX);
            fx = fx <= 0 ? 0f : fx - MathF.Floor(fx);
            if (sx < 0) (fx, sx) = (0, 0);
            if (sx + 1 >= width)
            {
                xmax = Math.Min(xmax, dx);
                if (sx >= width - 1) (fx, sx) = (0, width - 1);
            }
            xofs[dx] = sx;
            alpha[dx * 2] = SaturateShort((1f - fx) * CoefScale);
            alpha[dx * 2 + 1] = SaturateShort(fx * CoefScale);
        }
        var yofs = new int[dstHeight];
        var beta = new short[dstHeight * 2];
        for (int dy = 0; dy < dstHeight; dy++)
        {
            int sy = (int)Math.Floor(dy * scaleY);
            float fy = (float)((dy + 1) - (sy + 1) * invScaleY);
            fy = fy <= 0 ? 0f : fy - MathF.Floor(fy);
            yofs[dy] = sy;
            beta[dy * 2] = SaturateShort((1f - fy) * CoefScale);
            beta[dy * 2 + 1] = SaturateShort(fy * CoefScale);
        }

        int rowWidth = dstWidth * cn;
        int[] HorizontalRow(int sy)
        {
            var row = new int[rowWidth];
            int srcRow = sy * width * cn;
            for (int dx = 0; dx < dstWidth; dx++)
            {
                int at = srcRow + xofs[dx] * cn;
                for (int c = 0; c < cn; c++)
                {
                    row[dx * cn + c] = dx < xmax
                        ? src[at + c] * alpha[dx * 2] + src[at + cn + c] * alpha[dx * 2 + 1]
                        : src[at + c] * CoefScale;
                }
            }
            return row;
        }

        var dst = new byte[rowWidth * dstHeight];
        for (int dy = 0; dy < dstHeight; dy++)
        {
            var s0 = HorizontalRow(Math.Clamp(yofs[dy], 0, height - 1));
            var s1 = HorizontalRow(Math.Clamp(yofs[dy] + 1, 0, height - 1));
            int b0 = beta[dy * 2], b1 = beta[dy * 2 + 1];
            for (int x = 0; x < rowWidth; x++)
                dst[dy * rowWidth + x] = (byte)((((b0 * (s0[x] >> 4)) >> 16) + ((b1 * (s1[x] >> 4)) >> 16) + 2) >> 2);
        }
        return dst;
    }

    /// <summary>interpolateCubic: Keys' kernel with A = −0.75 in float, the last weight 1 − the others.</summary>
    private static void CubicWeights(float x, Span<float> coeffs)
    {
        const float A = -0.75f;
        coeffs[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
        coeffs[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
        coeffs[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
        coeffs[3] = 1f - coeffs[0] - coeffs[1] - coeffs[2];
    }

    /// <summary>
    /// The generic separable path with INTER_CUBIC: <c>fx = (float)((dx + 0.5)·scale − 0.5)</c>, 11-bit weights
    /// (rounded, not renormalised), four taps with the edge pixel repeated; horizontally exact integer sums. Vertically
    /// OpenCV runs VResizeCubicVec_32s8u on every full group of 8 values of a row (float: each weight · 2⁻²², the taps
    /// accumulated from the last, <c>t = S3·b3; t = S2·b2 + t; …</c>, round-half-even) and the fixed-point
    /// <c>(Σ S·b + 2²¹) &gt;&gt; 22</c> on the rest; the two can differ at an exact half, so both are reproduced.
    /// </summary>
    private static byte[] Cubic(byte[] src, int width, int height, int cn, int dstWidth, int dstHeight, double scaleX, double scaleY)
    {
        Span<float> coeffs = stackalloc float[4];
        var xofs = new int[dstWidth];
        var alpha = new short[dstWidth * 4];
        for (int dx = 0; dx < dstWidth; dx++)
        {
            float fx = (float)((dx + 0.5) * scaleX - 0.5);
            int sx = (int)MathF.Floor(fx);
            fx -= sx;
            xofs[dx] = sx;
            CubicWeights(fx, coeffs);
            for (int k = 0; k < 4; k++) alpha[dx * 4 + k] = SaturateShort(coeffs[k] * CoefScale);
        }
        var yofs = new int[dstHeight];
        var beta = new short[dstHeight * 4];
        for (int dy = 0; dy < dstHeight; dy++)
        {
            float fy = (float)((dy + 0.5) * scaleY - 0.5);
            int sy = (int)MathF.Floor(fy);
            fy -= sy;
            yofs[dy] = sy;
            CubicWeights(fy, coeffs);
            for (int k = 0; k < 4; k++) beta[dy * 4 + k] = SaturateShort(coeffs[k] * CoefScale);
        }

        int rowWidth = dstWidth * cn;
        var rows = new int[height][];
        int[] HorizontalRow(int sy)
        {
            if (rows[sy] is { } cached) return cached;
            var row = new int[rowWidth];
            int srcRow = sy * width * cn;
            for (int dx = 0; dx < dstWidth; dx++)
            {
                for (int c = 0; c < cn; c++)
                {
                    int v = 0;
                    for (int j = 0; j < 4; j++)
                        v += src[srcRow + Math.Clamp(xofs[dx] - 1 + j, 0, width - 1) * cn + c] * alpha[dx * 4 + j];
                    row[dx * cn + c] = v;
                }
            }
            return rows[sy] = row;
        }

        const int VectorLanes = 8; // v_int16 lanes of a 128-bit SIMD register: the vector loop's step
        const float FixedToFloat = 1f / (CoefScale * CoefScale);
        int vectorEnd = rowWidth / VectorLanes * VectorLanes;
        var dst = new byte[rowWidth * dstHeight];
        for (int dy = 0; dy < dstHeight; dy++)
        {
            var s0 = HorizontalRow(Math.Clamp(yofs[dy] - 1, 0, height - 1));
            var s1 = HorizontalRow(Math.Clamp(yofs[dy], 0, height - 1));
            var s2 = HorizontalRow(Math.Clamp(yofs[dy] + 1, 0, height - 1));
            var s3 = HorizontalRow(Math.Clamp(yofs[dy] + 2, 0, height - 1));
            int b0 = beta[dy * 4], b1 = beta[dy * 4 + 1], b2 = beta[dy * 4 + 2], b3 = beta[dy * 4 + 3];
            float f0 = b0 * FixedToFloat, f1 = b1 * FixedToFloat, f2 = b2 * FixedToFloat, f3 = b3 * FixedToFloat;
            int dstRow = dy * rowWidth;
            for (int x = 0; x < vectorEnd; x++)
            {
                float t = s3[x] * f3;
                t = s2[x] * f2 + t;
                t = s1[x] * f1 + t;
                t = s0[x] * f0 + t;
                dst[dstRow + x] = (byte)Math.Clamp((int)MathF.Round(t, MidpointRounding.ToEven), 0, 255);
            }
            for (int x = vectorEnd; x < rowWidth; x++)
            {
                int v = s0[x] * b0 + s1[x] * b1 + s2[x] * b2 + s3[x] * b3;
                dst[dstRow + x] = (byte)Math.Clamp((v + (1 << (2 * CoefBits - 1))) >> (2 * CoefBits), 0, 255);
            }
        }
        return dst;
    }

    /// <summary>saturate_cast&lt;uchar&gt;(float): round half to even (cvRound), clamped.</summary>
    internal static byte SaturateByte(float value) => (byte)Math.Clamp(MathF.Round(value, MidpointRounding.ToEven), 0f, 255f);

    private static short SaturateShort(float value) => (short)Math.Clamp(MathF.Round(value, MidpointRounding.ToEven), short.MinValue, short.MaxValue);

    private static int SaturateInt(double value) => (int)Math.Clamp(Math.Round(value, MidpointRounding.ToEven), int.MinValue, int.MaxValue);
}
