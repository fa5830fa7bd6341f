import { PageTitle } from '../ui';

export function ServerPage() {
  return (
    <section>
      <PageTitle>Server</PageTitle>
    </section>
  );
}
