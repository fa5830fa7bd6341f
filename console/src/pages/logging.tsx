import { PageTitle } from '../ui';

export function LoggingPage() {
  return (
    <section>
      <PageTitle>Logging configurations</PageTitle>
    </section>
  );
}
